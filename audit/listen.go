package audit

import (
	"context"
	"errors"
	"net"
)

// ServeRTT accepts TCP connections on ln and closes each at once, until ctx ends: the point providers measure
// their round trip to (the auditor's genesis host). It answers nothing else and reads nothing.
func ServeRTT(ctx context.Context, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		c.Close()
	}
}
