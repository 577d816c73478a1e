// Swagger UI for the remote-care API, initialised from a file (the CSP allows no inline script).
// The schema URL comes from the page's data attribute; the bundle is the local sidecar copy.
const root = document.getElementById("swagger-ui");
window.SwaggerUIBundle({
  url: root.dataset.schemaUrl,
  domNode: root,
  deepLinking: true,
  persistAuthorization: false,
  presets: [window.SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
