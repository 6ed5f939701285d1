// handle.h - the native side of one JS Store: when its ef_store is opened,
// shared and closed.
//
// Two rules of libedgefeed shape it:
//  - ef_close() may run only once no other thread uses the handle. Every
//    call a Store queues is counted (Enter on the JS thread, Leave on the
//    pool thread when it is done); the store is released only when the
//    count is back to 0 and the Store is closed (or was garbage-collected).
//  - LMDB does not support one environment opened twice in one process
//    (closing either drops the locks the other relies on). worker_threads
//    share the process, so the ef_store is kept in one process-wide
//    registry keyed by the store directory's real path: every Store of the
//    same directory, in any thread, shares one ef_store, closed with the
//    last of them.
#ifndef EDGEFEED_NODE_HANDLE_H
#define EDGEFEED_NODE_HANDLE_H

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

#include "edgefeed.h"

namespace edgefeed_node {

// An error of the library, carried from the pool thread to the JS thread.
struct Failure {
  int rc = EF_OK;      // an ef_errno value
  std::string detail;  // ef_errmsg() of the failing thread, or ours
};

// The configuration a Store asks for: ef_config without its callbacks.
struct OpenConfig {
  uint32_t feed_cap = 0;
  int64_t feed_ttl_ms = 0;
  int64_t ip_retention_ms = 0;
  unsigned flags = 0;

  bool operator==(const OpenConfig &o) const {
    return feed_cap == o.feed_cap && feed_ttl_ms == o.feed_ttl_ms &&
           ip_retention_ms == o.ip_retention_ms && flags == o.flags;
  }
};

struct SharedStore;  // an ef_store of the registry, with its user count

class Handle {
 public:
  Handle(std::string dir, const OpenConfig &cfg);
  ~Handle();
  Handle(const Handle &) = delete;
  Handle &operator=(const Handle &) = delete;

  // JS thread: count a call about to be queued. Fails (false) once the
  // Store is closed: no call starts after close().
  bool Enter();
  // Pool thread, at the start of a call: the open store, opening it on the
  // first call. On failure, *why says why (the open's error, every time).
  ef_store *Use(Failure *why);
  // JS thread, after Enter(): the store if it is open already, else
  // nullptr (the JS thread never opens it, nor waits for an open).
  ef_store *TryUse();
  // Pool thread (or the JS thread after TryUse), when a call is done with
  // the store.
  void Leave();

  // JS thread: no call starts from now on; returns false if it was closed
  // already. A CloseWait() must follow (queued on the pool).
  bool BeginClose();
  // Pool thread: wait for the calls in flight, then release the store.
  void CloseWait();
  // JS thread, when the Store is garbage-collected or its environment torn
  // down without close(): release now if nothing is in flight (the one
  // case where ef_close runs on the JS thread), else the last call
  // releases it.
  void Abandon();

 private:
  SharedStore *TakeStoreLocked();

  // mu_ guards the counts and flags, held for a moment only (the JS thread
  // takes it); open_mu_ serializes the first Use(), held for ef_open.
  std::mutex mu_;
  std::mutex open_mu_;
  std::condition_variable idle_;  // signalled when inflight_ drops to 0
  const std::string dir_;         // as the caller gave it
  const OpenConfig cfg_;
  unsigned inflight_ = 0;         // calls entered and not yet left
  bool closed_ = false;           // close() called, or abandoned
  bool closer_ = false;           // a CloseWait() will release the store
  bool opened_ = false;           // the open was tried (once only); open_mu_
  Failure open_failure_;          // its error, if it failed; open_mu_
  SharedStore *store_ = nullptr;  // the shared ef_store; NULL until opened
                                  // and once released
};

}  // namespace edgefeed_node

#endif
