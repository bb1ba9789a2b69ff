package tx

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Field limits shared by messages and state.
const (
	MaxNameLen    = 64  // GPU model, region, zone
	MaxURILen     = 256 // provider host URI
	MaxListLen    = 16  // GPU groups, model alternatives, regions, deny list
	MaxReasonLen  = 256 // close reasons
	PPM           = 1_000_000
	MaxGPUsPerBox = 1024
)

// GPUGroup is a set of identical GPUs a provider declares.
type GPUGroup struct {
	Model   string `json:"model"`    // normalised model, e.g. "H100"
	VRAMMiB uint64 `json:"vram_mib"` // memory per GPU
	Count   uint32 `json:"count"`
}

// Hardware is a provider's declared capacity.
type Hardware struct {
	GPUs      []GPUGroup `json:"gpus,omitempty"`
	CPUMilli  uint64     `json:"cpu_milli"`
	MemoryMiB uint64     `json:"memory_mib"`
	DiskMiB   uint64     `json:"disk_mib"`
}

// GPUCount is the total number of GPUs declared.
func (h Hardware) GPUCount() uint64 {
	var n uint64
	for _, g := range h.GPUs {
		n += uint64(g.Count)
	}
	return n
}

// Resources is what an order asks of one provider.
type Resources struct {
	GPUCount      uint32   `json:"gpu_count"`
	GPUModels     []string `json:"gpu_models,omitempty"` // any of; empty = any model
	GPUMinVRAMMiB uint64   `json:"gpu_min_vram_mib"`
	CPUMilli      uint64   `json:"cpu_milli"`
	MemoryMiB     uint64   `json:"memory_mib"`
	DiskMiB       uint64   `json:"disk_mib"`
}

// Constraints restrict which providers may serve an order.
type Constraints struct {
	Regions          []string  `json:"regions,omitempty"` // any of; empty = anywhere
	Deny             []Address `json:"deny,omitempty"`
	Verified         bool      `json:"verified"`           // only providers with a hardware attestation
	MinReputationPPM uint32    `json:"min_reputation_ppm"` // 0..1,000,000
	Docker           bool      `json:"docker"`             // the job names a container image: docker runtime needed
}

// Receipt is the provider's signed account of a finished lease. Anyone can verify it offline with the provider's
// public key (recorded on the ledger).
type Receipt struct {
	ChainID      string `json:"chain_id"`
	LeaseID      uint64 `json:"lease_id"`
	ManifestHash Hash   `json:"manifest_hash"`
	StartMs      uint64 `json:"start_ms"`
	EndMs        uint64 `json:"end_ms"`
	ExitCode     int64  `json:"exit_code"`
	GPUSeconds   uint64 `json:"gpu_seconds"`
	OutputRoot   Hash   `json:"output_root"`
	// VaultRoot is the Spare Vault root of the outputs, when the manifest asked for them in the Vault
	// (outputs_vault): the BLAKE3 root of vault.OutputsArchive of exactly the files OutputRoot covers, so that
	// the object stored under it is the one the provider vouches for. Zero otherwise; a receipt without it
	// signs and encodes as receipts always have.
	VaultRoot Hash   `json:"vault_root,omitzero"`
	Signature []byte `json:"signature"`
}

const receiptDomain = "spare-receipt-v1"

// SignBytes are the bytes the provider signs: a domain tag and every field but the signature.
func (rc *Receipt) SignBytes() []byte {
	w := NewWriter(160)
	w.String(receiptDomain)
	w.String(rc.ChainID)
	w.Uvarint(rc.LeaseID)
	w.Raw(rc.ManifestHash[:])
	w.Uvarint(rc.StartMs)
	w.Uvarint(rc.EndMs)
	w.Varint(rc.ExitCode)
	w.Uvarint(rc.GPUSeconds)
	w.Raw(rc.OutputRoot[:])
	if !rc.VaultRoot.IsZero() { // 32 more bytes: never the signed bytes of a receipt without one
		w.Raw(rc.VaultRoot[:])
	}
	return w.Bytes()
}

// plainText accepts valid UTF-8 without control characters: text every reader shows as it was written (a
// terminal or a JSON encoder would otherwise rewrite it, or be steered by it).
func plainText(field, s string) error {
	if !utf8.ValidString(s) {
		return Errorf(CodeInvalidMsg, "%s is not valid UTF-8: write plain text", field)
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return Errorf(CodeInvalidMsg, "%s has a control character (%U) at byte %d: write plain text on one line", field, r, i)
		}
	}
	return nil
}

// PlainText makes s acceptable as a reason: control characters become spaces, invalid UTF-8 becomes U+FFFD, and
// it is cut at a character boundary to at most max bytes (ending in "…" when cut).
func PlainText(s string, max int) string {
	if len(s) <= max && plainText("", s) == nil {
		return s // already plain and short: what the ledger composes itself, every time a lease ends
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if unicode.IsControl(r) {
			r = ' '
		}
		b.WriteRune(r)
	}
	s = b.String()
	if len(s) <= max {
		return s
	}
	const ell = "…"
	cut := max - len(ell)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}

func validName(field, s string, required bool) error {
	if s == "" {
		if required {
			return Errorf(CodeInvalidMsg, "%s is empty", field)
		}
		return nil
	}
	if len(s) > MaxNameLen {
		return Errorf(CodeInvalidMsg, "%s is %d bytes, limit %d", field, len(s), MaxNameLen)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.", c)) {
			return Errorf(CodeInvalidMsg, "%s %q: only letters, digits, '-', '_' and '.' are allowed", field, s)
		}
	}
	return nil
}

func validList[T any](field string, l []T) error {
	if len(l) > MaxListLen {
		return Errorf(CodeInvalidMsg, "%s has %d entries, limit %d", field, len(l), MaxListLen)
	}
	return nil
}

// validNames checks a bounded list of non-empty names.
func validNames(field string, l []string) error {
	if err := validList(field, l); err != nil {
		return err
	}
	for i, s := range l {
		if err := validName(fmt.Sprintf("%s[%d]", field, i), s, true); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks a declared hardware description.
func (h Hardware) Validate() error {
	if err := validList("hardware.gpus", h.GPUs); err != nil {
		return err
	}
	var total uint64
	for i, g := range h.GPUs {
		if err := validName(fmt.Sprintf("hardware.gpus[%d].model", i), g.Model, true); err != nil {
			return err
		}
		if g.Count == 0 {
			return Errorf(CodeInvalidMsg, "hardware.gpus[%d].count is 0: omit the group instead", i)
		}
		if g.VRAMMiB == 0 {
			return Errorf(CodeInvalidMsg, "hardware.gpus[%d].vram_mib is 0", i)
		}
		total += uint64(g.Count)
	}
	if total > MaxGPUsPerBox {
		return Errorf(CodeInvalidMsg, "hardware declares %d GPUs, limit %d per provider", total, MaxGPUsPerBox)
	}
	if h.CPUMilli == 0 {
		return Errorf(CodeInvalidMsg, "hardware.cpu_milli is 0: declare at least one core")
	}
	if h.MemoryMiB == 0 {
		return Errorf(CodeInvalidMsg, "hardware.memory_mib is 0")
	}
	return nil
}

// Validate checks an order's resource request.
func (r Resources) Validate() error {
	if err := validNames("resources.gpu_models", r.GPUModels); err != nil {
		return err
	}
	if r.GPUCount > MaxGPUsPerBox {
		return Errorf(CodeInvalidMsg, "resources.gpu_count %d above limit %d", r.GPUCount, MaxGPUsPerBox)
	}
	if r.GPUCount == 0 && (len(r.GPUModels) > 0 || r.GPUMinVRAMMiB > 0) {
		return Errorf(CodeInvalidMsg, "resources: GPU model or VRAM given with gpu_count 0: set gpu_count")
	}
	if r.GPUCount == 0 && r.CPUMilli == 0 {
		return Errorf(CodeInvalidMsg, "resources: ask for at least one GPU or some CPU")
	}
	return nil
}

// Validate checks placement constraints.
func (c Constraints) Validate() error {
	if err := validNames("constraints.regions", c.Regions); err != nil {
		return err
	}
	if err := validList("constraints.deny", c.Deny); err != nil {
		return err
	}
	if c.MinReputationPPM > PPM {
		return Errorf(CodeInvalidMsg, "constraints.min_reputation_ppm %d above %d", c.MinReputationPPM, PPM)
	}
	return nil
}

// EncodeHardware writes the canonical encoding.
func EncodeHardware(w *Writer, h Hardware) {
	w.List("hardware.gpus", len(h.GPUs), MaxListLen)
	for _, g := range h.GPUs {
		w.Str("gpu.model", g.Model, MaxNameLen)
		w.Uvarint(g.VRAMMiB)
		w.Uvarint(uint64(g.Count))
	}
	w.Uvarint(h.CPUMilli)
	w.Uvarint(h.MemoryMiB)
	w.Uvarint(h.DiskMiB)
}

// DecodeHardware reads the canonical encoding.
func DecodeHardware(r *Reader) Hardware {
	var h Hardware
	n := r.Count("hardware.gpus", MaxListLen)
	for i := 0; i < n && r.Err() == nil; i++ {
		var g GPUGroup
		g.Model = r.String("gpu.model", MaxNameLen)
		g.VRAMMiB = r.Uvarint("gpu.vram")
		g.Count = r.U32("gpu.count")
		h.GPUs = append(h.GPUs, g)
	}
	h.CPUMilli = r.Uvarint("hardware.cpu")
	h.MemoryMiB = r.Uvarint("hardware.memory")
	h.DiskMiB = r.Uvarint("hardware.disk")
	return h
}

// EncodeResources writes the canonical encoding.
func EncodeResources(w *Writer, x Resources) {
	w.Uvarint(uint64(x.GPUCount))
	w.List("resources.gpu_models", len(x.GPUModels), MaxListLen)
	for _, m := range x.GPUModels {
		w.Str("gpu_model", m, MaxNameLen)
	}
	w.Uvarint(x.GPUMinVRAMMiB)
	w.Uvarint(x.CPUMilli)
	w.Uvarint(x.MemoryMiB)
	w.Uvarint(x.DiskMiB)
}

// DecodeResources reads the canonical encoding.
func DecodeResources(r *Reader) Resources {
	var x Resources
	x.GPUCount = r.U32("resources.gpu_count")
	n := r.Count("resources.gpu_models", MaxListLen)
	for i := 0; i < n && r.Err() == nil; i++ {
		x.GPUModels = append(x.GPUModels, r.String("gpu_model", MaxNameLen))
	}
	x.GPUMinVRAMMiB = r.Uvarint("resources.gpu_vram")
	x.CPUMilli = r.Uvarint("resources.cpu")
	x.MemoryMiB = r.Uvarint("resources.memory")
	x.DiskMiB = r.Uvarint("resources.disk")
	return x
}

// EncodeConstraints writes the canonical encoding.
func EncodeConstraints(w *Writer, c Constraints) {
	w.List("constraints.regions", len(c.Regions), MaxListLen)
	for _, s := range c.Regions {
		w.Str("region", s, MaxNameLen)
	}
	w.List("constraints.deny", len(c.Deny), MaxListLen)
	for _, a := range c.Deny {
		w.Address(a)
	}
	w.Bool(c.Verified)
	w.Uvarint(uint64(c.MinReputationPPM))
	w.Bool(c.Docker)
}

// DecodeConstraints reads the canonical encoding.
func DecodeConstraints(r *Reader) Constraints {
	var c Constraints
	n := r.Count("constraints.regions", MaxListLen)
	for i := 0; i < n && r.Err() == nil; i++ {
		c.Regions = append(c.Regions, r.String("region", MaxNameLen))
	}
	n = r.Count("constraints.deny", MaxListLen)
	for i := 0; i < n && r.Err() == nil; i++ {
		c.Deny = append(c.Deny, r.Address("deny"))
	}
	c.Verified = r.Bool("constraints.verified")
	c.MinReputationPPM = r.U32("constraints.min_reputation")
	c.Docker = r.Bool("constraints.docker")
	return c
}

// EncodeReceipt writes a receipt including its signature, but not its VaultRoot: that came later, and is written
// last by whoever embeds a receipt (EncodeReceiptVault), only when set, so that a receipt without one is still
// the one encoding of its value.
func EncodeReceipt(w *Writer, rc Receipt) {
	w.Str("receipt.chain_id", rc.ChainID, MaxChainIDLen)
	w.Uvarint(rc.LeaseID)
	w.Raw(rc.ManifestHash[:])
	w.Uvarint(rc.StartMs)
	w.Uvarint(rc.EndMs)
	w.Varint(rc.ExitCode)
	w.Uvarint(rc.GPUSeconds)
	w.Raw(rc.OutputRoot[:])
	w.BlobMax("receipt.signature", rc.Signature, SignatureLen)
}

// DecodeReceipt reads a receipt written by EncodeReceipt.
func DecodeReceipt(r *Reader) Receipt {
	var rc Receipt
	rc.ChainID = r.String("receipt.chain_id", MaxChainIDLen)
	rc.LeaseID = r.Uvarint("receipt.lease_id")
	rc.ManifestHash = r.Hash("receipt.manifest_hash")
	rc.StartMs = r.Uvarint("receipt.start")
	rc.EndMs = r.Uvarint("receipt.end")
	rc.ExitCode = r.Varint("receipt.exit_code")
	rc.GPUSeconds = r.Uvarint("receipt.gpu_seconds")
	rc.OutputRoot = r.Hash("receipt.output_root")
	rc.Signature = r.Blob("receipt.signature", SignatureLen)
	return rc
}

// EncodeReceiptVault writes a receipt's VaultRoot when it is set: the last field of whatever holds the receipt.
func EncodeReceiptVault(w *Writer, rc *Receipt) {
	if !rc.VaultRoot.IsZero() {
		w.Raw(rc.VaultRoot[:])
	}
}

// DecodeReceiptVault reads what EncodeReceiptVault wrote: nothing left means no Vault root; anything left must
// be one, and not zero (zero is written by leaving it out).
func DecodeReceiptVault(r *Reader, rc *Receipt) {
	if r.Remaining() == 0 {
		return
	}
	if rc.VaultRoot = r.Hash("receipt.vault_root"); rc.VaultRoot.IsZero() && r.Err() == nil {
		r.Fail("receipt.vault_root", "all zeros: a receipt without a Vault root leaves the field out")
	}
}

// Bounded reads a uvarint that must not exceed max (Writer.Bounded).
func (r *Reader) Bounded(field string, max uint64) uint64 {
	v := r.Uvarint(field)
	if v > max {
		r.Fail(field, "value %d exceeds %d", v, max)
		return 0
	}
	return v
}

// U32 reads a uvarint that must fit 32 bits.
func (r *Reader) U32(field string) uint32 {
	v := r.Uvarint(field)
	if v > 1<<32-1 {
		r.Fail(field, "value %d exceeds 32 bits", v)
		return 0
	}
	return uint32(v)
}
