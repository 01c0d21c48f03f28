package ledger

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckpointFile(t *testing.T) {
	dir := t.TempDir()
	f := CheckpointFile{Path: filepath.Join(dir, "checkpoint.json")}
	if cp, err := f.Load(); err != nil || cp != (Checkpoint{}) {
		t.Fatalf("Load before any Save = %+v, %v; want the zero checkpoint", cp, err)
	}
	for _, cp := range []Checkpoint{{Block: 7, TxID: "abc"}, {Block: 8}} {
		if err := f.Save(cp); err != nil {
			t.Fatal(err)
		}
		got, err := f.Load()
		if err != nil || got != cp {
			t.Errorf("Load after Save(%+v) = %+v, %v", cp, got, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("Save left temporary files: %v", entries)
	}
	if err := os.WriteFile(f.Path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Load(); err == nil || !strings.Contains(err.Error(), "decoding checkpoint") {
		t.Errorf("Load of a torn file: %v, want a decoding error", err)
	}
}
