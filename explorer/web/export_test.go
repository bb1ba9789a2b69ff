package web

// FormatBytes is how the pages show a size, for the tests to look for.
var FormatBytes = formatBytes
