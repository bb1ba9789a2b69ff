package schema

import (
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// Rewards' keys (package rewards, docs/economics.md).
//
// KeyEmission is the emission record (api.Emission); PWorkBurn indexes, per epoch, what the leases each provider
// completed in it burned (written at completion, read and dropped by the epoch's tally); KeyLeasedGPUs counts the
// GPUs held by active leases (the network's paid utilisation), kept only with rewards on.
const (
	KeyEmission   = "emission"
	PWorkBurn     = "wb/" // epoch | provider -> burned (uvarint)
	KeyLeasedGPUs = "gpul"
)

// WorkBurnKey is the work index's key of a provider's completions in an epoch.
func WorkBurnKey(epoch uint64, a tx.Address) string { return PWorkBurn + BE64(epoch) + string(a[:]) }

func EncEmission(e *api.Emission) []byte {
	w := tx.NewWriter(64)
	for _, v := range emissionFields(e) {
		w.Uvarint(*v)
	}
	return sealed(w, "emission")
}

func DecEmission(b []byte) (*api.Emission, error) {
	e := &api.Emission{}
	r := tx.NewReader(b)
	for _, f := range emissionFields(e) {
		*f = r.Uvarint("emission")
	}
	return e, r.Done("emission")
}

func emissionFields(e *api.Emission) []*uint64 {
	l := &e.Last
	return []*uint64{&e.Epoch, &e.RateNano, &e.Minted, &l.Epoch, &l.Emission, &l.Auditors, &l.Availability, &l.Work,
		&l.UtilisationPPM, &l.WeightTotal, &l.Burns, &l.PaidAuditors, &l.PaidAvailability, &l.PaidWork}
}
