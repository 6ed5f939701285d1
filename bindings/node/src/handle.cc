// handle.cc - see handle.h.
#include "handle.h"

#include <cassert>
#include <climits>
#include <cstdlib>
#include <map>
#include <utility>

namespace edgefeed_node {

struct SharedStore {
  ef_store *st;      // open, owned by the registry
  std::string key;   // its directory's real path
  OpenConfig cfg;    // what it was opened with
  unsigned users;    // Handles holding it
};

namespace {

// The registry is the process's, not an addon instance's: every
// worker_thread loads its own instance of the addon, and they must find one
// another's stores. Never destroyed: a static destructor at exit could run
// while a pool thread still uses it.
std::mutex &RegistryMutex() {
  static std::mutex *mu = new std::mutex;
  return *mu;
}

std::map<std::string, SharedStore *> &Registry() {
  static auto *reg = new std::map<std::string, SharedStore *>;
  return *reg;
}

// The registry's key of a store: its directory's real path, so that every
// spelling of one directory finds it; else the address as given (a
// directory that does not exist yet, so no store of it is open; a
// redis:// address).
std::string StoreKey(const std::string &dir) {
  if (dir.rfind("redis://", 0) == 0) return dir;  // never a path
  char *p = realpath(dir.c_str(), nullptr);
  if (!p) return dir;
  std::string s(p);
  free(p);
  return s;
}

int Acquire(const std::string &dir, const OpenConfig &cfg, SharedStore **out,
            Failure *why) {
  std::lock_guard<std::mutex> lk(RegistryMutex());
  auto &reg = Registry();
  auto it = reg.find(StoreKey(dir));
  if (it != reg.end()) {
    if (!(it->second->cfg == cfg)) {
      why->rc = EF_EINVAL;
      why->detail = "options: '" + dir + "' is already open in this process "
                    "with other options (feedCap, feedTtlMs, ipRetentionMs, "
                    "groupCommit, noSync, readOnly): open it with the same "
                    "ones, or close it first";
      return why->rc;
    }
    it->second->users++;
    *out = it->second;
    return EF_OK;
  }
  ef_config c = {};
  c.feed_cap = cfg.feed_cap;
  c.feed_ttl_ms = cfg.feed_ttl_ms;
  c.ip_retention_ms = cfg.ip_retention_ms;
  c.flags = cfg.flags;
  ef_store *st = nullptr;
  int rc = ef_open(&st, dir.c_str(), &c);
  if (rc != EF_OK) {
    why->rc = rc;
    why->detail = ef_errmsg(nullptr);
    return rc;
  }
  // the key once the directory exists; taken over by this store if an
  // older one was registered under it (its Release still finds its own)
  std::string key = StoreKey(dir);
  auto *s = new SharedStore{st, key, cfg, 1};
  reg[key] = s;
  *out = s;
  return EF_OK;
}

// Drop one user of s (NULL: nothing), closing it with the last.
void Release(SharedStore *s) {
  if (!s) return;
  std::lock_guard<std::mutex> lk(RegistryMutex());
  assert(s->users > 0);
  if (--s->users > 0) return;
  auto &reg = Registry();
  auto it = reg.find(s->key);
  if (it != reg.end() && it->second == s) reg.erase(it);
  ef_close(s->st);
  delete s;
}

}  // namespace

Handle::Handle(std::string dir, const OpenConfig &cfg)
    : dir_(std::move(dir)), cfg_(cfg) {}

Handle::~Handle() {
  // Every call holds a reference to the Handle, and the Store that made it
  // abandons or closes it first: nothing can still hold the store here.
  assert(store_ == nullptr);
}

bool Handle::Enter() {
  std::lock_guard<std::mutex> lk(mu_);
  if (closed_) return false;
  inflight_++;
  return true;
}

ef_store *Handle::Use(Failure *why) {
  // not mu_: the JS thread takes that one, and must never wait for an open
  std::lock_guard<std::mutex> lk(open_mu_);
  if (!opened_) {
    opened_ = true;
    Acquire(dir_, cfg_, &store_, &open_failure_);
  }
  if (!store_) {
    *why = open_failure_;
    return nullptr;
  }
  return store_->st;
}

ef_store *Handle::TryUse() {
  std::unique_lock<std::mutex> lk(open_mu_, std::try_to_lock);
  if (!lk.owns_lock() || !opened_ || !store_) return nullptr;
  return store_->st;
}

void Handle::Leave() {
  SharedStore *done = nullptr;
  {
    std::lock_guard<std::mutex> lk(mu_);
    assert(inflight_ > 0);
    if (--inflight_ > 0) return;
    if (closer_)
      idle_.notify_all();
    else if (closed_)
      done = TakeStoreLocked();  // abandoned meanwhile: the last one closes
  }
  Release(done);
}

bool Handle::BeginClose() {
  std::lock_guard<std::mutex> lk(mu_);
  if (closed_) return false;
  closed_ = true;
  closer_ = true;
  return true;
}

void Handle::CloseWait() {
  SharedStore *done;
  {
    std::unique_lock<std::mutex> lk(mu_);
    idle_.wait(lk, [this] { return inflight_ == 0; });
    done = TakeStoreLocked();
  }
  Release(done);
}

void Handle::Abandon() {
  SharedStore *done = nullptr;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (closed_) return;  // closed, or a CloseWait() releases it
    closed_ = true;
    if (inflight_ == 0) done = TakeStoreLocked();
  }
  Release(done);
}

// With no call in flight, no thread is in Use(): store_ is settled, and
// was published to this thread by mu_ (each call leaves through it).
SharedStore *Handle::TakeStoreLocked() {
  SharedStore *s = store_;
  store_ = nullptr;
  return s;
}

}  // namespace edgefeed_node
