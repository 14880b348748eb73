package meter

import (
	"encoding/json"
	"fmt"
	"os"
)

// HappyPath returns the states an execution of the ASL definition at path enters
// when nothing fails and every loop runs once: from StartAt, each state's Next, and a
// Choice's Default (the definitions put the operator-retry and loop branches in
// Choices), until a state that ends the execution.
func HappyPath(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var def struct {
		StartAt string `json:"StartAt"`
		States  map[string]struct {
			Type    string `json:"Type"`
			Next    string `json:"Next"`
			Default string `json:"Default"`
			End     bool   `json:"End"`
		} `json:"States"`
	}
	if err := json.Unmarshal(raw, &def); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []string
	for name := def.StartAt; name != ""; {
		st, ok := def.States[name]
		if !ok {
			return nil, fmt.Errorf("%s: no state %q", path, name)
		}
		if len(out) > len(def.States) {
			return nil, fmt.Errorf("%s: the default path loops", path)
		}
		out = append(out, name)
		switch {
		case st.End || st.Type == "Succeed" || st.Type == "Fail":
			name = ""
		case st.Type == "Choice":
			name = st.Default
		default:
			name = st.Next
		}
	}
	return out, nil
}
