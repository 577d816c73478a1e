// Data-set forms: when the name, path or file names a MedMNIST collection (PneumoniaMNIST,
// .../breastmnist_128.npz), fill the input-contract fields with that collection's default
// (diagnosis.imaging.contract.MEDMNIST_CONTRACTS) so the model admin sees and edits it. Fields
// the admin typed in are never overwritten; the server applies the same default when every
// contract field is left blank.

const source = document.getElementById("contract-defaults");
const defaults = source ? JSON.parse(source.textContent) : {};
const FIELDS = ["reads", "modalities", "body_parts", "views", "photometric", "channels"];

function collectionOf(text) {
  const stem = (text || "").split(/[\\/]/).pop().replace(/\.[^.]*$/, "").toLowerCase();
  const name = stem.trim().replace(/[\s_-]+\d+$/, "").replace(/[\s_-]+/g, "");
  return Object.prototype.hasOwnProperty.call(defaults, name) ? name : null;
}

for (const form of document.querySelectorAll("form[data-contract-form]")) {
  const fields = Object.fromEntries(
    FIELDS.map((name) => [name, form.querySelector(`[name="${name}"]`)]).filter(([, el]) => el),
  );
  // Values this script wrote: replaced when the name changes, unlike the admin's own.
  const filled = new Map();
  const typedByAdmin = (el) => el.value !== "" && filled.get(el) !== el.value;

  const apply = () => {
    const file = form.querySelector('input[type="file"][name="file"]');
    const names = [
      form.querySelector('[name="name"]')?.value,
      form.querySelector('[name="path"]')?.value,
      file?.files?.[0]?.name,
    ];
    const collection = names.map(collectionOf).find(Boolean);
    if (!collection || Object.values(fields).some(typedByAdmin)) return;
    for (const [name, el] of Object.entries(fields)) {
      el.value = defaults[collection][name] ?? "";
      filled.set(el, el.value);
    }
    form.dataset.contractPrefilled = collection;
  };
  for (const name of ["name", "path", "file"]) {
    form.querySelector(`[name="${name}"]`)?.addEventListener("change", apply);
  }
  apply();
}
