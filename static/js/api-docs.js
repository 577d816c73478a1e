// Swagger UI for the remote-care API, initialised from a file (the CSP allows no inline script).
// The schema URL comes from the page's data attribute; the bundle is the local sidecar copy.
const root = document.getElementById("swagger-ui");
window.SwaggerUIBundle({
  url: root.dataset.schemaUrl,
  domNode: root,
  // Deep links put a link inside each operation's toggle button: nested controls, which
  // screen readers cannot reach (WCAG 4.1.2). Without them the path is plain text.
  deepLinking: false,
  persistAuthorization: false,
  presets: [window.SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
