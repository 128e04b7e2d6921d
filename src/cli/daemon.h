// Daemon lifecycle: detaching from the terminal, telling the parent and systemd that the
// mount serves, and telling systemd when it stops.
#pragma once

#include "common/status.h"

namespace tierfs {

// Forks. The parent waits until the child calls NotifyReady() and then exits 0, or exits
// with the child's status if the child dies first (the child has printed its error). Only
// the child returns; it is in a new session, with stdio still attached until NotifyReady.
// Must be called before any thread is started.
Status Detach();

// Signals readiness: to the waiting parent (then stdio goes to /dev/null), and to systemd
// via $NOTIFY_SOCKET (READY=1) when set.
void NotifyReady(const char* status_text);

// Tells systemd the service is stopping (STOPPING=1), when $NOTIFY_SOCKET is set.
void NotifyStopping();

}  // namespace tierfs
