package jobspec

// ParseSPR is parseSPR, for the external test that compares it with client.ParseAmount.
var ParseSPR = parseSPR
