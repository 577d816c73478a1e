from __future__ import annotations

import gzip
import io

import pytest
from rdkit import Chem

from drugs.ml import chem
from drugs.ml.chem import MoleculeFileError, parse_molecule_file

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"


def test_canonical_smiles_is_stable_and_rejects_invalid() -> None:
    assert chem.canonical_smiles("OC(=O)c1ccccc1OC(C)=O") == chem.canonical_smiles(ASPIRIN)
    assert chem.canonical_smiles("C1CC") is None
    assert chem.canonical_smiles("") is None
    assert chem.canonical_smiles("not a molecule") is None


def test_smi_file_reports_each_bad_line() -> None:
    data = b"smiles name\nCCO ethanol\nC1CC broken ring\n\nc1ccccc1 benzene\nC(C\nN(C)(C)(C)(C)C\n"
    parsed = parse_molecule_file(data, "upload.smi")
    assert [(m.line, m.smiles, m.name) for m in parsed.molecules] == [
        (2, "CCO", "ethanol"),
        (5, "c1ccccc1", "benzene"),
    ]
    errors = {e.line: e.message for e in parsed.errors}
    assert set(errors) == {3, 6, 7}
    assert "unclosed ring" in errors[3]
    assert "parenthes" in errors[6]
    assert "valence" in errors[7].lower()
    assert parsed.error_count == 3


def test_csv_detects_smiles_column_and_numeric_values() -> None:
    data = (
        b"Compound ID,SMILES,pIC50,assay\n"
        b"a1,CCO,5.5,kinase\n"
        b"a2,xyz,6.0,kinase\n"
        b"a3,c1ccccc1O,,kinase\n"
    )
    parsed = parse_molecule_file(data, "assay.csv")
    assert parsed.smiles_column == "SMILES"
    assert [m.smiles for m in parsed.molecules] == ["CCO", "Oc1ccccc1"]
    assert parsed.molecules[0].values == {"pIC50": 5.5}
    assert parsed.molecules[1].values == {}
    assert [e.line for e in parsed.errors] == [3]


def test_csv_gz_and_explicit_column() -> None:
    data = gzip.compress(b"id;structure_text\n1;CCN\n2;CCCl\n")
    parsed = parse_molecule_file(data, "set.csv.gz", smiles_column="structure_text")
    assert [m.smiles for m in parsed.molecules] == ["CCN", "CCCl"]
    with pytest.raises(MoleculeFileError, match="no column named 'smiles'"):
        parse_molecule_file(b"a,b\nCCO,1\n", "x.csv", smiles_column="smiles")


def test_sdf_with_properties_and_a_broken_record() -> None:
    out = io.StringIO()
    writer = Chem.SDWriter(out)
    for smiles, name, value in (("CCO", "ethanol", 1.5), ("Oc1ccccc1", "phenol", 2.25)):
        mol = Chem.MolFromSmiles(smiles)
        mol.SetProp("_Name", name)
        mol.SetProp("pIC50", str(value))
        writer.write(mol)
    writer.close()
    text = (
        out.getvalue() + "broken\n  junk\n\n  3  2  0  0  0  0  0  0  0  0999 V2000\nM  END\n$$$$\n"
    )
    parsed = parse_molecule_file(text.encode(), "library.sdf")
    assert [(m.smiles, m.name, m.values) for m in parsed.molecules] == [
        ("CCO", "ethanol", {"pIC50": 1.5}),
        ("Oc1ccccc1", "phenol", {"pIC50": 2.25}),
    ]
    assert len(parsed.errors) == 1 and parsed.errors[0].text == "broken"


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"", "empty.smi", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "photo.csv", "binary"),
        ("CCO caf\xe9".encode("latin-1"), "latin.smi", "not UTF-8"),
        (b"name,weight\naspirin,180\n", "table.csv", "No SMILES column"),
        (b"Dear colleague,\nplease find attached\n", "letter.txt", "No valid molecule"),
        (b"CCO\n", "molecules.xlsx", "Unsupported file type"),
        (b"CCO\n", "molecules.smi.gz", "not a valid gzip"),
        (b"just text\n", "x.sdf", "does not look like an SD file"),
    ],
)
def test_junk_files_are_rejected_with_a_message(data: bytes, filename: str, message: str) -> None:
    with pytest.raises(MoleculeFileError, match=message):
        parse_molecule_file(data, filename)


def test_max_molecules_is_enforced() -> None:
    with pytest.raises(MoleculeFileError, match="more than 2"):
        parse_molecule_file(b"C\nCC\nCCC\n", "x.smi", max_molecules=2)


def test_aspirin_properties() -> None:
    props = chem.mol_properties(ASPIRIN)
    assert props is not None
    assert props.mw == pytest.approx(180.16, abs=0.01)
    assert props.qed == pytest.approx(0.55, abs=0.01)  # Bickerton et al. 2012 report 0.55
    assert props.hbd == 1 and props.hba == 3
    assert 1 < props.sa_score < 2.5  # a simple, easily made molecule
    assert props.lipinski_pass and props.pains_pass and props.moses_filters_pass
    assert set(props.to_dict()) >= {"mw", "logp", "tpsa", "qed", "sa_score", "lipinski_pass"}


def test_rule_breakers_fail_their_filters() -> None:
    # Tristearin: MW 891 and logP far above 5, two violations of the rule of five.
    big_props = chem.mol_properties(
        "CCCCCCCCCCCCCCCCCC(=O)OCC(COC(=O)CCCCCCCCCCCCCCCCC)OC(=O)CCCCCCCCCCCCCCCCC"
    )
    assert big_props is not None and big_props.lipinski_violations >= 2
    assert not big_props.lipinski_pass
    # A catechol-containing ene-rhodanine is a textbook PAINS alert.
    pains = chem.mol_properties("O=C1NC(=S)SC1=Cc1ccc(O)c(O)c1")
    assert pains is not None and not pains.pains_pass and not pains.moses_filters_pass
    # Charged atoms are outside the MOSES filters.
    assert chem.mol_properties("C[N+](C)(C)C").moses_filters_pass is False
    assert chem.mol_properties("bad(") is None
    assert chem.properties_many(["CCO", "bad("])[1] is None


def test_draw_svg_is_inline_safe() -> None:
    svg = chem.draw_svg(ASPIRIN, 300, 200)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    lowered = svg.lower()
    for bad in ("<?xml", "<script", "onload", "onclick", "href", "<foreignobject", "url("):
        assert bad not in lowered
    assert "<path" in svg
    with pytest.raises(ValueError, match="invalid SMILES"):
        chem.draw_svg("C1CC")


def test_svg_sanitiser_strips_active_content() -> None:
    hostile = (
        '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" onload="alert(1)" width="10">'
        '<script>alert(2)</script><a xlink:href="javascript:alert(3)"><path d="M0 0"/></a>'
        '<path d="M1 1" style="fill:url(http://evil/x)" onclick="x()"/>'
        '<image href="http://evil/i.png"/><text x="1">C&lt;script&gt;</text></svg>'
    )
    clean = chem._sanitise_svg(hostile)
    lowered = clean.lower()
    for bad in ("onload", "onclick", "<script", "javascript", "href", "<image", "url(", "<a"):
        assert bad not in lowered
    assert '<path d="M1 1"' in clean and "&lt;script&gt;" in clean


def test_nearest_neighbours_ranks_by_tanimoto() -> None:
    reference = ["CCO", "CCCO", "c1ccccc1", "not-smiles", "CCCCO"]
    result = chem.nearest_neighbours("CCO", reference, k=3)
    assert result[0] == ("CCO", 1.0)
    assert [s for s, _ in result][1:] == ["CCCO", "CCCCO"]
    assert result[1][1] > result[2][1]
    index = chem.FingerprintIndex(reference)
    assert len(index) == 4  # the invalid reference is skipped
    with pytest.raises(ValueError):
        index.nearest("C1CC")
