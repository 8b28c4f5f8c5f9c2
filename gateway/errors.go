package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Fields  []string `json:"fields,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{errorDetail{Code: code, Message: msg}})
}

func writeFieldError(w http.ResponseWriter, status int, code, msg string, fields []string) {
	writeJSON(w, status, errorBody{errorDetail{Code: code, Message: msg, Fields: fields}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"cannot encode the response"}}`)
	}
	b = append(b, '\n')
	writeRaw(w, status, b)
}

// writeRaw sends an encoded JSON body. The constant headers share their
// value slices from one response to the next (net/http copies a handler's
// headers before it writes them, and Header.Set and Add replace a value
// slice rather than write into it; len == cap makes an append copy): that
// saves three allocations on every response.
func writeRaw(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h["Content-Type"] = headerJSON
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	h["X-Content-Type-Options"] = headerNosniff
	h["Cache-Control"] = headerNoStore
	w.WriteHeader(status)
	w.Write(b)
}

// Shared header values of writeRaw: never to be written into.
var (
	headerJSON    = []string{"application/json"}
	headerNosniff = []string{"nosniff"}
	headerNoStore = []string{"no-store"}
)
