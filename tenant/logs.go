package tenant

import (
	"context"
	"fmt"
	"io"
)

// StreamLogs copies a lease's logs to w; with follow it returns when the workload has ended.
func (t *Tenant) StreamLogs(ctx context.Context, leaseID uint64, follow bool, w io.Writer) error {
	provider, err := t.leaseProvider(ctx, leaseID)
	if err != nil {
		return err
	}
	path := fmt.Sprintf("/leases/%d/logs", leaseID)
	if follow {
		path += "?follow=1"
	}
	resp, err := t.call(ctx, provider, "GET", path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if w == nil {
		w = io.Discard
	}
	_, err = io.Copy(w, resp.Body)
	return err
}
