package policy

import (
	"testing"
	"testing/fstest"

	"github.com/cloverenclave/clover/schema"
)

func defaultSchema(t testing.TB) *schema.Schema {
	t.Helper()
	s, err := schema.New(schema.Default())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func defaultSet(t testing.TB) *Set {
	t.Helper()
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fsOf builds a file system of policy files from name/text pairs.
func fsOf(kv ...string) fstest.MapFS {
	m := fstest.MapFS{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = &fstest.MapFile{Data: []byte(kv[i+1])}
	}
	return m
}

func field(t testing.TB, name string) schema.Field {
	t.Helper()
	f, ok := defaultSchema(t).Field(name)
	if !ok {
		t.Fatalf("no field %q", name)
	}
	return f
}
