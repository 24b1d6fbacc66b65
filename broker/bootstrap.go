package broker

// Bootstrap credentials: what "shoal storage format --add-scram" leaves in
// the metadata directory for the first start, as Kafka's
// "kafka-storage format --add-scram" leaves bootstrap records, so a
// cluster with SCRAM listeners and ACLs has a user who can log in and
// create the rest. The metadata quorum applies them to a brand-new log
// only; once the log exists the file is ignored.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/raftmeta"
	"github.com/shoalmq/shoal/sasl"
)

// bootstrapFile is the file in the metadata directory.
const bootstrapFile = "bootstrap-credentials.json"

// bootstrapCredential is one stored SCRAM credential: salted, never the
// password.
type bootstrapCredential struct {
	User       string `json:"user"`
	Mechanism  string `json:"mechanism"`
	Salt       []byte `json:"salt"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
	Iterations int32  `json:"iterations"`
}

// ErrFormatted means the node's metadata log already exists: its
// credentials are managed with AlterUserScramCredentials from now on.
var ErrFormatted = errors.New("the metadata log already exists")

// FormatStorage prepares a node's data directory for its first start with
// the SCRAM credentials specs describe (salted here; each voter of a
// cluster must be formatted with the same salts, given with salt= or
// saltedpassword=). It refuses a node whose metadata log exists.
func FormatStorage(cfg *config.Broker, specs []sasl.ScramSpec) ([]string, error) {
	if entries, err := os.ReadDir(cfg.MetadataDir); err == nil {
		for _, e := range entries {
			if e.Name() != bootstrapFile {
				return nil, fmt.Errorf("%s: %w", cfg.MetadataDir, ErrFormatted)
			}
		}
	}
	var creds []bootstrapCredential
	var users []string
	for _, sp := range specs {
		c, err := sp.Credential()
		if err != nil {
			return nil, fmt.Errorf("%s for %s: %w", sp.Mechanism, sp.Name, err)
		}
		creds = append(creds, bootstrapCredential{
			User: sp.Name, Mechanism: sp.Mechanism.String(),
			Salt: c.Salt, StoredKey: c.StoredKey, ServerKey: c.ServerKey, Iterations: c.Iterations,
		})
		users = append(users, sp.Mechanism.String()+":"+sp.Name)
	}
	b, err := json.MarshalIndent(creds, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.MetadataDir, 0o755); err != nil {
		return nil, err
	}
	// Salted credentials still allow an offline guess: owner only.
	path := filepath.Join(cfg.MetadataDir, bootstrapFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, err
	}
	return users, os.Rename(tmp, path)
}

// bootstrapRecords reads the credentials FormatStorage left, as the
// records a brand-new metadata log starts with.
func bootstrapRecords(metadataDir string) ([]raftmeta.Record, error) {
	b, err := os.ReadFile(filepath.Join(metadataDir, bootstrapFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var creds []bootstrapCredential
	if err := json.Unmarshal(b, &creds); err != nil {
		return nil, fmt.Errorf("%s: %w", bootstrapFile, err)
	}
	var recs []raftmeta.Record
	for _, c := range creds {
		mech, err := sasl.ParseScramMechanism(c.Mechanism)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", bootstrapFile, err)
		}
		recs = append(recs, &raftmeta.UpsertScramCredential{User: c.User, Credential: raftmeta.ScramCredential{
			Mechanism: int8(mech), Salt: c.Salt, StoredKey: c.StoredKey, ServerKey: c.ServerKey, Iterations: c.Iterations,
		}})
	}
	return recs, nil
}
