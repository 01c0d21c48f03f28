package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// CheckpointFile keeps a Checkpoint in a file, replaced atomically on every Save so that a
// crash leaves either the old or the new checkpoint, never a torn one.
type CheckpointFile struct {
	Path string
}

// Load returns the saved checkpoint, or the zero Checkpoint when none was saved yet.
func (f CheckpointFile) Load() (Checkpoint, error) {
	var cp Checkpoint
	data, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return cp, nil
	}
	if err != nil {
		return cp, fmt.Errorf("reading checkpoint: %w", err)
	}
	if err := json.Unmarshal(data, &cp); err != nil {
		return cp, fmt.Errorf("decoding checkpoint %s: %w", f.Path, err)
	}
	return cp, nil
}

// Save records cp durably.
func (f CheckpointFile) Save(cp Checkpoint) error {
	data, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("encoding checkpoint: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.Path), filepath.Base(f.Path)+".*")
	if err != nil {
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	return nil
}
