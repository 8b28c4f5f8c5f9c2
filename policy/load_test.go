package policy

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadIDsAndOrder(t *testing.T) {
	fsys := fsOf(
		"b.cedar", `@id("named") permit (principal, action, resource);
forbid (principal, action, resource) when { context.hour > 22 };`,
		"a.cedar", `permit (principal, action == Action::"write", resource);`,
		"notes.txt", `not a policy`,
		"sub/c.cedar", `this is ignored: only the root is read`,
	)
	s, err := Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.IDs(), []string{"a.cedar:0", "named", "b.cedar:1"}; !slices.Equal(got, want) {
		t.Errorf("IDs = %v, want %v", got, want)
	}
	files := s.Files()
	if len(files) != 2 || files[0].Name != "a.cedar" || files[1].Name != "b.cedar" || !strings.Contains(files[1].Text, `@id("named")`) {
		t.Errorf("Files = %+v", files)
	}
	if txt, ok := s.Policy("named"); !ok || !strings.Contains(txt, "permit") {
		t.Errorf("Policy(named) = %q, %v", txt, ok)
	}
}

func TestDigest(t *testing.T) {
	a := fsOf("a.cedar", `permit (principal, action, resource);`, "b.cedar", `forbid (principal, action, resource);`)
	s1, err := Load(a)
	if err != nil {
		t.Fatal(err)
	}
	// Documented canonical form, computed independently.
	if got, want := s1.Digest(), digest([]File{{"a.cedar", `permit (principal, action, resource);`}, {"b.cedar", `forbid (principal, action, resource);`}}); got != want {
		t.Errorf("digest %s, want %s", got, want)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(s1.Digest()) {
		t.Errorf("digest %q is not hex SHA-256", s1.Digest())
	}
	s2, _ := Load(a)
	if s1.Digest() != s2.Digest() {
		t.Error("digest is not stable")
	}
	for name, fsys := range map[string]fstest.MapFS{
		"content": fsOf("a.cedar", `permit (principal, action, resource); `, "b.cedar", `forbid (principal, action, resource);`),
		"name":    fsOf("a2.cedar", `permit (principal, action, resource);`, "b.cedar", `forbid (principal, action, resource);`),
		// Moving text from one file to the next must change the digest.
		"boundary": fsOf("a.cedar", `permit (principal, action, resource);forbid (principal, action, resource);`, "b.cedar", ``),
	} {
		s3, err := Load(fsys)
		if err != nil {
			t.Fatal(err)
		}
		if s3.Digest() == s1.Digest() {
			t.Errorf("%s change kept the digest", name)
		}
	}
	d, _ := Default()
	if d.Digest() == s1.Digest() || d.Len() == 0 {
		t.Error("default set")
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name string
		fsys fstest.MapFS
		want []string // regexps, one per expected error line
	}{
		{"syntax", fsOf("ok.cedar", `permit (principal, action, resource);`, "bad.cedar", "permit (principal, action, resource);\n\n  forbid (principal, action, resource) when { 1 +  };"),
			[]string{`^bad\.cedar:3:53: syntax error: ";": invalid primary$`}},
		{"unterminated string", fsOf("bad.cedar", "permit (principal, action, resource)\nwhen { context.purpose == \"support };"),
			[]string{`^bad\.cedar:2:\d+: syntax error: .*literal not terminated`}},
		{"garbage after a policy", fsOf("bad.cedar", "permit (principal, action, resource);\nhello"),
			[]string{`^bad\.cedar:2:\d+: syntax error: `}},
		{"duplicate @id", fsOf("a.cedar", `@id("x") permit (principal, action, resource);`, "b.cedar", "\n  @id(\"x\") forbid (principal, action, resource);"),
			[]string{`^b\.cedar:2:3: policy id "x" is already used by the policy at a\.cedar:1:1$`}},
		{"duplicate @id in one file", fsOf("a.cedar", "@id(\"x\") permit (principal, action, resource);\n@id(\"x\") permit (principal, action, resource);"),
			[]string{`^a\.cedar:2:1: policy id "x" is already used by the policy at a\.cedar:1:1$`}},
		{"@id taking a generated id", fsOf("a.cedar", "permit (principal, action, resource);", "b.cedar", `@id("a.cedar:0") permit (principal, action, resource);`),
			[]string{`^b\.cedar:1:1: policy id "a\.cedar:0" is already used`}},
		{"empty @id", fsOf("a.cedar", `@id("") permit (principal, action, resource);`),
			[]string{`^a\.cedar:1:1: @id must not be empty$`}},
		{"@id with a space", fsOf("a.cedar", `@id("a b") permit (principal, action, resource);`),
			[]string{`^a\.cedar:1:1: @id "a b" must be printable`}},
		{"two files wrong", fsOf("a.cedar", `permit (`, "b.cedar", `forbid`),
			[]string{`^a\.cedar:\d+:\d+: syntax error`, `^b\.cedar:\d+:\d+: syntax error`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(c.fsys)
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %v (%T), want Errors", err, err)
			}
			if len(es) != len(c.want) {
				t.Fatalf("errors:\n%v\nwant %d", err, len(c.want))
			}
			for i, re := range c.want {
				if !regexp.MustCompile(re).MatchString(es[i].Error()) {
					t.Errorf("error %q does not match %q", es[i], re)
				}
			}
		})
	}
}

func TestLoadNoFilesAndTooBig(t *testing.T) {
	if _, err := Load(fsOf("readme.md", "x")); err == nil || !strings.Contains(err.Error(), "no *.cedar") {
		t.Errorf("no files: %v", err)
	}
	big := strings.Repeat("// padding\n", MaxFileBytes/10)
	if _, err := Load(fsOf("big.cedar", big)); err == nil || !strings.Contains(err.Error(), "big.cedar: file is larger") {
		t.Errorf("big file: %v", err)
	}
}
