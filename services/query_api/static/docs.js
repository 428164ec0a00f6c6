// Swagger UI for /docs: the bundle and its preset come from the openapi-ui-bundles package, served by
// query_api; this file is the init script the CSP allows (no inline script). The schema URL is on the
// container's data-spec-url. validatorUrl null: never ask validator.swagger.io for a badge (offline).
window.addEventListener("load", function () {
  "use strict";
  var node = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: node.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "BaseLayout"
  });
});
