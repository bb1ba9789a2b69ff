package provider

import "time"

// SetLeaseStartedDelay holds back the LeaseStarted each start sends, for the duration of a test.
func SetLeaseStartedDelay(d time.Duration) (restore func()) {
	old := testLeaseStartedDelay.Swap(int64(d))
	return func() { testLeaseStartedDelay.Store(old) }
}

// SetMaxOpenOrdersAtStart bounds the orders a new provider considers at its first start, for a test.
func SetMaxOpenOrdersAtStart(n uint64) (restore func()) {
	old := maxOpenOrdersAtStart
	maxOpenOrdersAtStart = n
	return func() { maxOpenOrdersAtStart = old }
}
