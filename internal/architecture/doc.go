// Package architecture holds no code, only a test: it keeps the import
// table of docs/architecture.md true to the code, in both directions.
package architecture
