package tx

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestCodesDocumented keeps docs/ledger.md's table of result codes complete.
func TestCodesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/ledger.md")
	if err != nil {
		t.Fatal(err)
	}
	for c := range codeNames {
		row := fmt.Sprintf("| %d | %s |", uint32(c), c)
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/ledger.md lacks the row %q", row)
		}
	}
	for typ, name := range msgNames {
		if !strings.Contains(string(doc), fmt.Sprintf("| %d | ", uint64(typ))) {
			t.Errorf("docs/ledger.md lacks message %d (%s)", uint64(typ), name)
		}
	}
}
