package clustertest

import "testing"

func TestNamespacePrefix(t *testing.T) {
	tests := map[string]string{
		"TestFoo":          "testfoo",
		"TestFoo/sub_case": "testfoo-sub-case",
		"TestE2E/Ünïcode":  "teste2e-n-code",
		"___":              "test",
		"TestAVeryLongNameThatGoesOnAndOnAndOn/x":         "testaverylongnamethatgoesonandonandon-x",
		"TestAVeryLongNameThatGoesOnAndOnAndOnAndOn/case": "testaverylongnamethatgoesonandonandonand",
	}
	for in, want := range tests {
		if got := namespacePrefix(in); got != want {
			t.Errorf("namespacePrefix(%q) = %q, want %q", in, got, want)
		}
	}
}
