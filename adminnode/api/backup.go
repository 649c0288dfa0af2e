package api

import (
	"crypto/ed25519"
	"fmt"
	"net/http"

	"github.com/gatehouse/gatehouse/adminnode/backup"
	"github.com/gatehouse/gatehouse/backupfile"
)

// backupMediaType is the type of a backup (gzip-compressed JSON lines,
// adminnode/backup).
const backupMediaType = "application/vnd.gatehouse.backup+gzip"

// backup streams a signed backup of the domain as it reads it from one
// snapshot of the store: writers go on meanwhile, and the answer is never
// held in memory. Its name, which sorts by time, is the attachment's
// file name. A failure once the answer is under way cuts the connection,
// so that the client never takes a part for a backup (its signed last
// line is missing too).
func (s *Server) backup(q *request) (any, error) {
	now := s.now()
	name := backupfile.ObjectName(s.domain.Name, now)
	q.auditTarget = name
	return served{http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", backupMediaType)
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
		res, err := backup.Write(r.Context(), w, s.store, s.domain.Name, ed25519.PrivateKey(s.key), now)
		if err != nil {
			s.log.Error("backup failed", "request_id", q.id, "name", name, "error", err)
			q.status, q.auditDetail, q.abort = http.StatusInternalServerError, err.Error(), true
			return
		}
		q.auditDetail = fmt.Sprintf("%d records, %s", res.Items, res.Checksum)
	})}, nil
}
