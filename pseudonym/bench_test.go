package pseudonym

import (
	"encoding/json"
	"testing"

	"github.com/cloverenclave/clover/schema"
)

// sink keeps benchmark results alive.
var sink string

func BenchmarkToken32(b *testing.B) {
	tk := newTestTokenizer(b)
	value := make([]byte, 32)
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		sink = tk.Token("purpose:support", value)
	}
}

func BenchmarkAppendToken32(b *testing.B) {
	tk := newTestTokenizer(b)
	value := make([]byte, 32)
	buf := make([]byte, 0, TokenLen)
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		buf = tk.AppendToken(buf[:0], "purpose:support", value)
	}
}

func BenchmarkToken32Parallel(b *testing.B) {
	tk := newTestTokenizer(b)
	value := make([]byte, 32)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 0, TokenLen)
		for pb.Next() {
			buf = tk.AppendToken(buf[:0], "purpose:support", value)
		}
	})
}

func BenchmarkSIVSeal(b *testing.B) {
	s := newTestSIV(b)
	value := []byte("jane.doe@example.com")
	b.ReportAllocs()
	for b.Loop() {
		sink = s.Seal("purpose:support", value)
	}
}

func BenchmarkFF1Phone(b *testing.B) {
	f := newDecimalFF1(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Phone(f, "+353 87 123 4567"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTransformRecord releases the 12 releasable fields of a record of
// schema.Default() in their pseudonym form (health_condition is withheld).
func BenchmarkTransformRecord(b *testing.B) {
	tr := newTestTransformer(b)
	var fields []schema.Field
	for _, f := range schema.Default() {
		if Supports(f, Pseudonym) {
			fields = append(fields, f)
		}
	}
	if len(fields) != 12 {
		b.Fatalf("%d fields take a pseudonym form, want 12", len(fields))
	}
	values := make([]json.RawMessage, len(fields))
	for i, f := range fields {
		values[i] = json.RawMessage(testRecord[f.Name])
	}
	b.ReportAllocs()
	for b.Loop() {
		for i, f := range fields {
			if _, err := tr.Transform(f, Pseudonym, values[i], testScope, testNow); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// usAnalyticsRecord is what a transfer to the default us-analytics
// destination asks of the Transformer per record: the subject as an HMAC
// token, the birth date as an age band, the device ID and interests as
// tokens and the IP address as its network (transfer/plan.go).
var usAnalyticsRecord = []struct {
	field schema.Field
	form  Form
	value json.RawMessage
}{
	{schema.Field{Name: "subject", Type: "string", Category: "identity", Method: "hmac"}, Pseudonym, json.RawMessage(`"subj-000042"`)},
	{schema.Field{Name: "birth_date", Type: "date", Category: "identity", Method: "age-band"}, Generalised, json.RawMessage(`"1990-06-15"`)},
	{schema.Field{Name: "device_id", Type: "string", Category: "device", Method: "hmac"}, Pseudonym, json.RawMessage(`"dev-00000042"`)},
	{schema.Field{Name: "ip_address", Type: "ip", Category: "device", Method: "ip-prefix"}, Generalised, json.RawMessage(`"192.0.42.77"`)},
	{schema.Field{Name: "interests", Type: "string", Category: "behavioural", Method: "hmac"}, Pseudonym, json.RawMessage(`"cycling, jazz"`)},
}

// BenchmarkTransformUSAnalytics transforms the fields of one record as a
// transfer to us-analytics does: three tokens and two generalisations.
func BenchmarkTransformUSAnalytics(b *testing.B) {
	tr := newTestTransformer(b)
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range usAnalyticsRecord {
			if _, err := tr.Transform(c.field, c.form, c.value, testScope, testNow); err != nil {
				b.Fatal(err)
			}
		}
	}
}
