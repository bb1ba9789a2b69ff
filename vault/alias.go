package vault

import "github.com/sparenet/spare/vault/layout"

// The layout of objects is package layout's (the ledger reads it too); these are its names here.
type (
	Coding = layout.Coding
	Layout = layout.Layout
	Object = layout.Object
)

const (
	GroupLog         = layout.GroupLog
	GroupSize        = layout.GroupSize
	CellSize         = layout.CellSize
	MaxShards        = layout.MaxShards
	MaxShardSize     = layout.MaxShardSize
	MaxObjectSize    = layout.MaxObjectSize
	MaxObjectShards  = layout.MaxObjectShards
	MaxManifestBytes = layout.MaxManifestBytes
)

// LayoutOf lays out an object of size bytes (layout.LayoutOf).
func LayoutOf(size uint64, c Coding) (Layout, error) { return layout.LayoutOf(size, c) }

// DecodeObject reads a manifest (layout.DecodeObject).
func DecodeObject(b []byte) (*Object, error) { return layout.DecodeObject(b) }
