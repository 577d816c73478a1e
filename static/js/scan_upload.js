// Offers only the models that can take the chosen files. Each option of the task choice
// carries what its input contract checks of a PNG/JPEG (data-channels, data-min-rows,
// data-min-cols; diagnosis.imaging.contract.contract_file_terms); this reads the same facts
// from each file's header and applies diagnosis.imaging.contract.file_fit's rules. A DICOM
// is never ruled out here: the server routes it by its header. The server checks again.

const select = document.querySelector("[data-task-choice]");
const input = select && select.form.querySelector('input[type="file"]');
const note = select && select.form.querySelector("[data-task-note]");

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

// What the header says: kind, colour (true, false, or null when the pixels decide, as for a
// palette PNG) and size. PNG: IHDR colour type 0/4 grey, 2/6 colour. JPEG: components of the
// first start-of-frame marker, 1 grey, 3 or 4 colour.
async function describe(file) {
  const bytes = new Uint8Array(await file.slice(0, 65536).arrayBuffer());
  const view = new DataView(bytes.buffer);
  if (bytes.length >= 26 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) {
    const type = bytes[25];
    const colour = type === 0 || type === 4 ? false : type === 2 || type === 6 ? true : null;
    return { kind: "png", colour, cols: view.getUint32(16), rows: view.getUint32(20) };
  }
  if (bytes.length > 4 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    let at = 2;
    while (at + 9 < bytes.length && bytes[at] === 0xff) {
      const marker = bytes[at + 1];
      const length = view.getUint16(at + 2);
      const frame = marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker);
      if (frame) {
        const components = bytes[at + 9];
        return {
          kind: "jpeg",
          colour: components === 1 ? false : components >= 3 ? true : null,
          rows: view.getUint16(at + 5),
          cols: view.getUint16(at + 7),
        };
      }
      at += 2 + length;
    }
    return { kind: "jpeg", colour: null, rows: null, cols: null };
  }
  return { kind: "dicom", colour: null, rows: null, cols: null };
}

function term(option, name) {
  const value = option.dataset[name];
  return value === undefined || value === "" ? null : Number(value);
}

// The same rules as file_fit: "" when the model can take the file, else why not.
function refusal(option, file) {
  if (file.kind === "dicom") return "";
  const channels = term(option, "channels");
  if (channels === 1 && file.colour === true) return "a colour image; it reads greyscale images";
  if (channels === 3 && file.colour === false) return "a greyscale image; it reads colour images";
  const rows = term(option, "minRows") || 0;
  const cols = term(option, "minCols") || 0;
  if (file.rows !== null && file.cols !== null && (file.rows < rows || file.cols < cols)) {
    return `${file.rows}x${file.cols} pixels; it needs at least ${rows}x${cols}`;
  }
  return "";
}

async function update() {
  const files = await Promise.all(
    Array.from(input.files).map(async (f) => ({ name: f.name, ...(await describe(f)) })),
  );
  const reasons = [];
  for (const option of select.options) {
    const refused = files.map((f) => [f, refusal(option, f)]).find(([, why]) => why);
    option.disabled = Boolean(refused);
    option.dataset.refused = refused ? "1" : "";
    if (refused) reasons.push(`${option.value} cannot take ${refused[0].name} (${refused[1]})`);
  }
  if (select.selectedOptions[0] && select.selectedOptions[0].disabled) {
    const first = Array.from(select.options).find((o) => !o.disabled);
    if (first) select.value = first.value;
  }
  const none = Array.from(select.options).every((o) => o.disabled);
  if (note) {
    note.hidden = reasons.length === 0;
    note.textContent = (none ? "No model in service can take every chosen file: " : "Not offered: ")
      + reasons.join("; ") + ".";
  }
}

if (select && input && select.options.length > 1) {
  input.addEventListener("change", update);
  // Files dropped onto the form are put into the input by upload.js, without a change event.
  select.form.addEventListener("drop", () => setTimeout(update, 0));
}
