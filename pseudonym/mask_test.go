package pseudonym

import "testing"

func TestMaskEmail(t *testing.T) {
	cases := map[string]string{
		"jane.doe@example.com":   "j***@example.com",
		"j@example.com":          "j***@example.com",
		"élodie@exemple.fr":      "é***@exemple.fr",
		`"a@b"@example.com`:      `"***@example.com`,
		"@example.com":           "***@example.com",
		"no-at-sign":             "n***",
		"":                       "",
		"x@y@sub.example.org":    "x***@sub.example.org",
		"JANE.DOE@EXAMPLE.COM":   "J***@EXAMPLE.COM",
		"jane+tag@mail.example.": "j***@mail.example.",
	}
	for in, want := range cases {
		if got := MaskEmail(in); got != want {
			t.Errorf("MaskEmail(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMaskPhone(t *testing.T) {
	cases := map[string]string{
		"+353 87 123 4567": "+*** ** *** **67",
		"(01) 234-5678":    "(**) ***-**78",
		"12345":            "***45",
		"1234":             "****", // too short to show any digit
		"+1 (23)":          "+* (**)",
		"":                 "",
		"0871234567 ext 9": "*********7 *** 9", // letters are masked; the last two digits are 7 and 9
	}
	for in, want := range cases {
		if got := MaskPhone(in); got != want {
			t.Errorf("MaskPhone(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMaskString(t *testing.T) {
	cases := map[string]string{
		"Jane Doe":                    "J***",
		"J":                           "J***",
		"":                            "",
		"Łukasz":                      "Ł***",
		"日本語":                         "日***",
		"IE29 AIBK 9311 5212 3456 78": "I***",
		"\xff\xfe":                    "\xff***",
	}
	for in, want := range cases {
		if got := MaskString(in); got != want {
			t.Errorf("MaskString(%q) = %q, want %q", in, got, want)
		}
	}
}
