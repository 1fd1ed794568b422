package main

import (
	"fmt"

	"github.com/obo-gateway/obo-gateway/internal/config"
)

// configProblems is the error serve stops with when the configuration
// does not load: one line per problem, each as config.FieldError renders
// it (config: FILE:LINE: FIELD (env VAR): problem), after a line that
// counts them when there are several, so that the "gateway: " main puts
// before the first line does not run into a problem. The problems stay
// reachable with errors.As.
func configProblems(path string, err error) error {
	n := len(config.Problems(err))
	if n < 2 {
		return err
	}
	return fmt.Errorf("serve: %d problems in the configuration %s (docs/configuration.md describes every setting):\n%w", n, path, err)
}
