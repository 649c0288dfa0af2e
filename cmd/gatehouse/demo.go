package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/demo"
)

func demoUpstreamCommand() *cobra.Command {
	var listen, name string
	cmd := &cobra.Command{
		Use:   "demo-upstream",
		Short: "Run the demo upstream: it answers every request with a JSON echo of it",
		Long: `Run the demo upstream: it answers every request with a JSON echo of it
(method, path, headers, body, and the name it was given), which is what the
examples route to. It prints the URL it listens on (with --listen :0, the
port picked) and serves until SIGINT or SIGTERM.`,
		Example: `  gatehouse demo-upstream --listen 127.0.0.1:9001 --name orders &
  gatehouse gateway --config examples/gateway.yaml --data-dir ./gw --listen 127.0.0.1:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("demo upstream: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "demo upstream %s listening on http://%s\n", name, l.Addr())
			srv := &http.Server{Handler: demo.Handler(name), ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-ctx.Done()
				shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.Shutdown(shut)
			}()
			if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9001", "address to listen on")
	cmd.Flags().StringVar(&name, "name", "demo", "name the upstream gives itself in its answers")
	return cmd
}
