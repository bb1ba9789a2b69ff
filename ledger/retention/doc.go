// Package retention prunes finished orders. An order and everything made for it — its bids, its leases and their receipts and commitments, its
// verification, its cluster record — leave the state RetentionBlocks blocks after the order is finished: no longer
// open, every lease ended, its verification judged, no escrow, reserve or held pay left in any of them. Until
// then every query answers as before; after, a query names what was pruned and where its history is (the
// explorer keeps it in its database). Providers, accounts and stake are never pruned. The state then holds the
// live objects plus what finished within the window, whatever the chain's age.
package retention
