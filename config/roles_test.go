package config

import (
	"strings"
	"testing"
)

func TestProcessRoles(t *testing.T) {
	voters := "controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9094,3@127.0.0.1:9095"
	for _, tc := range []struct {
		set  []string
		want string // "" for valid, else the key the error names
	}{
		{set: []string{"node.id=4", "process.roles=broker", voters}},
		{set: []string{"node.id=2", "process.roles=broker", voters}, want: "controller.quorum.voters"},
		{set: []string{"node.id=2", "process.roles=controller", voters, "listeners=CONTROLLER://127.0.0.1:9094"}},
		{set: []string{"node.id=4", "process.roles=controller", voters, "listeners=CONTROLLER://127.0.0.1:9096"}, want: "controller.quorum.voters"},
		{set: []string{"node.id=2", "process.roles=controller", voters}, want: "listeners"},
		{set: []string{"node.id=4", "process.roles=broker", voters, "listeners=CONTROLLER://127.0.0.1:9096"}, want: "listeners"},
		{set: []string{"node.id=2", "process.roles=broker,controller", voters}},
	} {
		cfg, err := Load("", nil, tc.set)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.set, err)
		case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want+":")):
			t.Errorf("%v: error %v, want one naming %s", tc.set, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "\n"):
			t.Errorf("error should be one line: %q", err)
		case err == nil && !cfg.HasRole("broker"):
			if bind, _ := cfg.ClientListeners(); len(bind) != 0 {
				t.Errorf("%v: controller-only node with client listeners %v", tc.set, bind)
			}
		}
	}
}
