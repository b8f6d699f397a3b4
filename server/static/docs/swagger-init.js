// Starts Swagger UI on /docs. Kept out of the page so the CSP can forbid inline scripts.
// The page's #swagger-ui element carries the OpenAPI document's URL and the token URL.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var tokenUrl = new URL(root.dataset.tokenUrl, window.location.href).href;

  // memdb wraps every answer in {"status": "success", "data": ...}; the "Authorize" dialog's
  // OAuth2 password flow wants the bare token object, so unwrap that one response for it
  // ("Try it out" on the same endpoint still shows the real, wrapped body).
  function unwrapToken(response) {
    try {
      var body = JSON.parse(response.data);
      if (body && body.data && body.data.access_token) {
        response.data = response.text = JSON.stringify(body.data);
        response.body = response.obj = body.data;
      }
    } catch (error) {
      // Not JSON: leave it for Swagger UI to report.
    }
    return response;
  }

  function markTokenRequest(request) {
    var headers = request.headers || {};
    if (request.url === tokenUrl && headers["X-Requested-With"] === "XMLHttpRequest") {
      request.responseInterceptor = unwrapToken;
    }
    return request;
  }

  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,
    requestInterceptor: markTokenRequest,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
