package gateway

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the OpenAPI 3 description of the API, served at /openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(OpenAPI)
}
