package provider

import "time"

// SetLeaseStartedDelay holds back the LeaseStarted each start sends, for the duration of a test.
func SetLeaseStartedDelay(d time.Duration) (restore func()) {
	old := testLeaseStartedDelay.Swap(int64(d))
	return func() { testLeaseStartedDelay.Store(old) }
}
