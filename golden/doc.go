// Package golden holds scratchgen's end-to-end golden cases (see golden_test.go):
// testdata/invalid has bad specs with their exact error output, testdata/bundles has
// specs with their expected bundle trees, modes and locks.
package golden
