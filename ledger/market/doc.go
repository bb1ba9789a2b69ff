// Package market is the ledger's order book: orders and their escrowed deposits, bids (each checked against
// everything the ledger knows of the bidder), auctions closed at the end of their window (lowest price, then
// reputation, then address), runs drawn by stake for replicated orders, expiry and cancellation with refunds.
// Winning bids become leases through the settlement module (settle); orders that lease several members at once
// are placed by the SelectBids hook (cluster).
package market
