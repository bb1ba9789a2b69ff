package spare_test

import (
	"go/ast"
	"strings"
	"testing"
)

// TestEveryPackageHasDoc fails when a package has no package doc comment, so the map of the code stays complete.
func TestEveryPackageHasDoc(t *testing.T) {
	eachPackage(t, func(dir string, p *ast.Package) {
		for _, f := range p.Files {
			if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
				return
			}
		}
		t.Errorf("package %s in %s has no package doc comment", p.Name, dir)
	})
}
