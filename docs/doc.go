// Package docs holds OBO Gateway's documentation, and the tests that keep
// it true to the code; it has no Go code of its own.
//
//   - quickstart_test.go runs the README's quick start for real: it builds
//     the gateway, starts the demo as the README says, reads the two export
//     lines the README promises, runs each curl line of the README as
//     written and checks what its comment promises (the status, the error
//     code, the claims the sample API shows). It also runs `gateway demo
//     -json` and checks the keys and admin endpoints the README lists.
//   - quotes_test.go reads README.md and every page here for what can be
//     checked cheaply and drifts silently: repository paths and links (with
//     their anchors), environment variables, configuration settings, error
//     and AADSTS codes, metric names and labels, Go identifiers and test
//     names, and the flags of quoted gateway, fakeentra and bench commands.
//     Each failure names the page, the line and the quote.
//   - pages_test.go holds single pages to what they describe: fakeentra.md
//     to the local tenant (its flags, its JSON line, the fixtures it cites),
//     performance.md's flag table to bench/run.sh, and security.md's table
//     of the checks on a token to the results and reasons internal/auth
//     counts.
//
// Checked elsewhere: operations.md's metric table, dashboard and alerts
// (internal/opsmonitor), architecture.md's import table
// (internal/architecture), kubernetes.md's manifests (deploy).
//
// The quick start needs curl; without it that test skips, except under
// CI=true, where it fails.
package docs
