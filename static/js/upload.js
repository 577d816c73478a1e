// Drag-and-drop onto the upload form: dropped files go into the form's file input, so the
// form submits normally (and works without this script).

const form = document.querySelector("[data-dropzone]");
if (form) {
  const zone = form.querySelector("[data-dropzone-target]");
  const input = form.querySelector('input[type="file"]');
  const list = form.querySelector("[data-dropzone-list]");
  const show = () => {
    list.replaceChildren(...Array.from(input.files).map((file) => {
      const item = document.createElement("li");
      item.textContent = `${file.name} (${(file.size / 1024).toFixed(0)} KB)`;
      return item;
    }));
  };
  ["dragenter", "dragover"].forEach((type) => zone.addEventListener(type, (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  }));
  ["dragleave", "drop"].forEach((type) => zone.addEventListener(type, () => zone.classList.remove("dragging")));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    const transfer = new DataTransfer();
    Array.from(input.files).forEach((file) => transfer.items.add(file));
    Array.from(event.dataTransfer.files).forEach((file) => transfer.items.add(file));
    input.files = transfer.files;
    show();
  });
  input.addEventListener("change", show);
  form.addEventListener("submit", () => form.querySelector("button[type=submit]").disabled = true);
}
