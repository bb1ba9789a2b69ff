package jobspec

import (
	_ "embed"
)

//go:embed schema.json
var schema []byte

// Schema returns the JSON Schema (draft 2020-12) of the job file format, for editors (`spare jobspec schema`).
// It checks structure, types and units; Parse checks more (paths that exist, combinations, limits).
func Schema() []byte { return append([]byte(nil), schema...) }
