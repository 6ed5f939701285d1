// ops.cc - see ops.h. Names of result fields follow the CLI's JSON.
#include "ops.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace edgefeed_node {

Napi::Error MakeError(Napi::Env env, const Failure &f) {
  Napi::Error e = Napi::Error::New(
      env, f.detail.empty() ? std::string(ef_strerror(f.rc)) : f.detail);
  e.Set("code", Napi::String::New(env, ef_err_name(f.rc)));
  e.Set("errno", Napi::Number::New(env, f.rc));
  return e;
}

// ---- the call ------------------------------------------------------------

Call::Call(Napi::Env env, std::shared_ptr<Handle> handle)
    : Napi::AsyncWorker(env, "edgefeed"),
      deferred_(Napi::Promise::Deferred::New(env)),
      handle_(std::move(handle)) {}

Napi::Value Call::Start(Call *call, bool counted) {
  Napi::Promise p = call->deferred_.Promise();
  if (counted && !call->handle_->Enter()) {
    call->deferred_.Reject(
        MakeError(call->Env(), Failure{EF_EINVAL, "store is closed"}).Value());
    delete call;
    return p;
  }
  call->Queue();
  return p;
}

Napi::Value Call::Result(Napi::Env env) { return env.Undefined(); }

// The library names the C fields; a JS caller knows them by their JS names.
static std::string JsFieldNames(std::string detail) {
  static const char *const names[][2] = {
      {"reservation_id:", "reservationId:"},
      {"created_ms:", "createdAt:"},
      {"payload_json:", "payload:"},
  };
  for (const auto &n : names) {
    if (detail.compare(0, strlen(n[0]), n[0]) == 0)
      return n[1] + detail.substr(strlen(n[0]));
  }
  return detail;
}

int Call::Fail(ef_store *st, int rc, const std::string &ours) {
  failure_.rc = rc;
  failure_.detail = ours.empty() ? JsFieldNames(ef_errmsg(st)) : ours;
  return rc;
}

void Call::Execute() {
  try {
    ef_store *st = handle_->Use(&failure_);
    rc_ = st ? Run(st) : failure_.rc;
  } catch (const std::bad_alloc &) {  // a result too big for the memory
    rc_ = Fail(nullptr, EF_ENOMEM, "out of memory");
  }
  handle_->Leave();  // on every path: close() waits for it
}

void Call::Settle() {
  Napi::Env env = Env();
  if (rc_ < 0) {
    deferred_.Reject(MakeError(env, failure_).Value());
    return;
  }
  try {
    deferred_.Resolve(Result(env));
  } catch (const Napi::Error &e) {
    deferred_.Reject(e.Value());
  }
}

// Settling must not throw out of here: node-addon-api would rethrow into
// a JS environment that may be gone. When a worker_thread is terminated
// with calls in flight, their completions run while its environment is
// torn down, every Node-API call fails, and there is nobody left to answer.
void Call::OnOK() {
  try {
    Settle();
  } catch (...) {
  }
}

// Execute never reports through SetError; kept for completeness.
void Call::OnError(const Napi::Error &e) {
  try {
    deferred_.Reject(e.Value());
  } catch (...) {
  }
}

// ---- arguments and entries -------------------------------------------------

namespace {

// The library's results, freed on every path (an exception included).
using EntryPtr = std::unique_ptr<ef_entry, void (*)(ef_entry *)>;

EntryPtr GetEntry(ef_store *st, const std::string &owner,
                  const std::string &rid, int *rc) {
  ef_entry *e = nullptr;
  *rc = ef_get_entry(st, owner.c_str(), rid.c_str(), &e);
  return EntryPtr(e, ef_entry_free);
}

struct PageHolder {
  ef_page page = {};
  PageHolder() = default;
  PageHolder(const PageHolder &) = delete;
  PageHolder &operator=(const PageHolder &) = delete;
  ~PageHolder() { ef_page_free(&page); }
};

std::string ArgString(const Napi::CallbackInfo &info, size_t i) {
  if (!info[i].IsString())
    throw Napi::TypeError::New(info.Env(), "edgefeed: internal: argument " +
                                               std::to_string(i) +
                                               " is not a string");
  return info[i].As<Napi::String>().Utf8Value();
}

// A string, or absent for undefined or null.
bool ArgOptString(const Napi::CallbackInfo &info, size_t i, std::string *out) {
  if (info[i].IsUndefined() || info[i].IsNull()) return false;
  *out = ArgString(info, i);
  return true;
}

double ArgNumber(const Napi::CallbackInfo &info, size_t i) {
  if (!info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), "edgefeed: internal: argument " +
                                               std::to_string(i) +
                                               " is not a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

// A JSON string literal of UTF-8 text (the library's strings are valid
// UTF-8; control characters are escaped all the same).
void AppendJsonString(std::string *out, const char *text) {
  static const char hex[] = "0123456789abcdef";
  out->push_back('"');
  for (const char *p = text; *p; p++) {
    unsigned char c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      out->append("\\u00");
      out->push_back(hex[c >> 4]);
      out->push_back(hex[c & 15]);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

// The CLI's entry shape as JSON text, made on the pool thread: the JS
// thread then builds the whole result with one JSON.parse (V8's own parser,
// far cheaper than setting each property through Node-API), payload
// included: the library keeps it byte for byte, and took it only as a JSON
// object.
void AppendEntryJson(std::string *out, const ef_entry &e) {
  char when[EF_TIME_BUFSZ];
  if (ef_time_format(e.created_ms, when) != EF_OK) when[0] = '\0';
  out->append("{\"reservationId\":");
  AppendJsonString(out, e.reservation_id);
  out->append(",\"createdAt\":");
  AppendJsonString(out, when);
  out->append(",\"createdMs\":");
  out->append(std::to_string(e.created_ms));
  out->append(",\"ip\":");
  if (e.ip)
    AppendJsonString(out, e.ip);
  else
    out->append("null");
  out->append(e.unread ? ",\"unread\":true,\"payload\":"
                       : ",\"unread\":false,\"payload\":");
  out->append(e.payload_json ? e.payload_json : "null");
  out->push_back('}');
}

// A page as {"entries":[...],"nextCursor":...}.
void AppendPageJson(std::string *out, const ef_page &page) {
  out->append("{\"entries\":[");
  for (size_t i = 0; i < page.count; i++) {
    if (i) out->push_back(',');
    AppendEntryJson(out, page.entries[i]);
  }
  out->append("],\"nextCursor\":");
  if (page.next_cursor)
    AppendJsonString(out, page.next_cursor);
  else
    out->append("null");
  out->push_back('}');
}

// createdAt given as text: epoch milliseconds or ISO-8601. 0 (the epoch
// itself) would mean "now" to the library, so it is refused here as it is
// for a number. EF_OK, or EF_EINVAL with *why.
int ParseCreatedText(const std::string &text, int64_t *ms, std::string *why) {
  std::string shown = text.substr(0, 64);
  if (ef_time_parse(text.c_str(), ms) != EF_OK) {
    *why = "createdAt: '" + shown + "' is neither epoch milliseconds nor an "
           "ISO-8601 time in [1970, 2286]";
    return EF_EINVAL;
  }
  if (*ms == 0) {
    *why = "createdAt: '" + shown + "' is the epoch itself; give a later "
           "time, or leave createdAt out for now";
    return EF_EINVAL;
  }
  return EF_OK;
}

// {"status":"created"|"duplicate","entry":...} of a finalization that
// returned @rc, with the entry as the store has it now (the first write
// wins). EF_OK, or the error of reading it back (*st's detail).
int AppendFinalizeJson(std::string *out, ef_store *st, const std::string &owner,
                       const std::string &rid, int rc) {
  int grc;
  EntryPtr e = GetEntry(st, owner, rid, &grc);
  if (grc != EF_OK && grc != EF_ENOTFOUND)  // ENOTFOUND: trimmed at once
    return grc;
  out->append(rc == EF_EXISTS ? "{\"status\":\"duplicate\",\"entry\":"
                              : "{\"status\":\"created\",\"entry\":");
  if (e)
    AppendEntryJson(out, *e);
  else
    out->append("null");
  out->push_back('}');
  return EF_OK;
}

Napi::Number Count(Napi::Env env, uint64_t n) {
  return Napi::Number::New(env, static_cast<double>(n));
}

// ---- the calls ---------------------------------------------------------------

class OpenCall : public Call {
 public:
  using Call::Call;

 protected:
  int Run(ef_store *) override { return EF_OK; }  // Use() opened it
};

class CloseCall : public Call {
 public:
  explicit CloseCall(Napi::Env env, std::shared_ptr<Handle> h)
      : Call(env, h), close_handle_(std::move(h)) {}

 private:
  // Not Call::Execute: the store is closed for new calls already, and this
  // one waits for those in flight instead of counting itself among them.
  void Execute() override { close_handle_->CloseWait(); }
  int Run(ef_store *) override { return EF_OK; }

  std::shared_ptr<Handle> close_handle_;
};

// A call that resolves to JSON text, parsed by index.js.
class JsonCall : public Call {
 public:
  using Call::Call;

 protected:
  Napi::Value Result(Napi::Env env) override {
    return Napi::String::New(env, json_);
  }

  std::string json_;
};

class FinalizeCall : public JsonCall {
 public:
  FinalizeCall(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h)
      : JsonCall(info.Env(), std::move(h)) {
    owner_ = ArgString(info, 0);
    rid_ = ArgString(info, 1);
    if (info[2].IsString())
      created_text_ = ArgString(info, 2), has_created_text_ = true;
    else
      created_ms_ = static_cast<int64_t>(ArgNumber(info, 2));
    has_ip_ = ArgOptString(info, 3, &ip_);
    has_payload_ = ArgOptString(info, 4, &payload_);
  }

 protected:
  int Run(ef_store *st) override {
    if (has_created_text_) {
      std::string why;
      int rc = ParseCreatedText(created_text_, &created_ms_, &why);
      if (rc != EF_OK) return Fail(nullptr, rc, why);
    }
    ef_receive r = {};
    r.owner = owner_.c_str();
    r.reservation_id = rid_.c_str();
    r.created_ms = created_ms_;
    r.ip = has_ip_ ? ip_.c_str() : nullptr;
    r.payload_json = has_payload_ ? payload_.c_str() : nullptr;
    int rc = ef_finalize(st, &r);
    if (rc < 0) return Fail(st, rc);
    int grc = AppendFinalizeJson(&json_, st, owner_, rid_, rc);
    return grc == EF_OK ? rc : Fail(st, grc);
  }

 private:
  std::string owner_, rid_, created_text_, ip_, payload_;
  bool has_created_text_ = false, has_ip_ = false, has_payload_ = false;
  int64_t created_ms_ = 0;
};

// finalizeBatch([[owner, rid, created, ip, payload], ...]): one
// ef_finalize_batch (one transaction, one sync) for the finalizations of
// one turn of the event loop. Resolves to a JSON array, one element a
// receive: what FinalizeCall resolves to, or {"error":{"errno":N,
// "detail":"..."}}.
class FinalizeBatchCall : public JsonCall {
 public:
  FinalizeBatchCall(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h)
      : JsonCall(info.Env(), std::move(h)) {
    Napi::Env env = info.Env();
    if (!info[0].IsArray())
      throw Napi::TypeError::New(env, "edgefeed: internal: not an array");
    Napi::Array a = info[0].As<Napi::Array>();
    items_.resize(a.Length());
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value v = a.Get(i);
      if (!v.IsArray())
        throw Napi::TypeError::New(env, "edgefeed: internal: not an item");
      Napi::Array x = v.As<Napi::Array>();
      Item &it = items_[i];
      it.owner = x.Get(0u).As<Napi::String>().Utf8Value();
      it.rid = x.Get(1u).As<Napi::String>().Utf8Value();
      Napi::Value c = x.Get(2u);
      if (c.IsString())
        it.created_text = c.As<Napi::String>().Utf8Value(),
        it.has_created_text = true;
      else
        it.created_ms = static_cast<int64_t>(c.As<Napi::Number>().DoubleValue());
      Napi::Value ip = x.Get(3u), pl = x.Get(4u);
      if (ip.IsString()) it.ip = ip.As<Napi::String>().Utf8Value(), it.has_ip = true;
      if (pl.IsString())
        it.payload = pl.As<Napi::String>().Utf8Value(), it.has_payload = true;
    }
  }

 protected:
  int Run(ef_store *st) override {
    const size_t n = items_.size();
    std::vector<ef_receive> rs;
    std::vector<size_t> at;
    std::vector<int> rcs(n, EF_OK);
    std::vector<std::string> why(n);
    for (size_t i = 0; i < n; i++) {
      Item &it = items_[i];
      if (it.has_created_text) {
        rcs[i] = ParseCreatedText(it.created_text, &it.created_ms, &why[i]);
        if (rcs[i] != EF_OK) continue;
      }
      ef_receive r = {};
      r.owner = it.owner.c_str();
      r.reservation_id = it.rid.c_str();
      r.created_ms = it.created_ms;
      r.ip = it.has_ip ? it.ip.c_str() : nullptr;
      r.payload_json = it.has_payload ? it.payload.c_str() : nullptr;
      rs.push_back(r);
      at.push_back(i);
    }
    std::vector<int> got(rs.size());
    for (size_t k = 0; k < rs.size(); k += EF_BATCH_MAX) {
      size_t m = std::min<size_t>(EF_BATCH_MAX, rs.size() - k);
      int rc = ef_finalize_batch(st, &rs[k], m, &got[k]);
      if (rc != EF_OK) return Fail(st, rc);
    }
    for (size_t k = 0; k < rs.size(); k++) {
      size_t i = at[k];
      rcs[i] = got[k];
      if (rcs[i] < 0) {  // its own detail: the call again, on its own
        rcs[i] = ef_finalize(st, &rs[k]);
        if (rcs[i] < 0) why[i] = JsFieldNames(ef_errmsg(st));
      }
    }
    json_.push_back('[');
    for (size_t i = 0; i < n; i++) {
      if (i) json_.push_back(',');
      if (rcs[i] >= 0 && AppendFinalizeJson(&json_, st, items_[i].owner,
                                            items_[i].rid, rcs[i]) == EF_OK)
        continue;
      if (rcs[i] >= 0) {  // read back failed
        rcs[i] = EF_EIO;
        why[i] = JsFieldNames(ef_errmsg(st));
      }
      json_.append("{\"error\":{\"errno\":");
      json_.append(std::to_string(rcs[i]));
      json_.append(",\"detail\":");
      AppendJsonString(&json_, why[i].empty() ? ef_strerror(rcs[i])
                                              : why[i].c_str());
      json_.append("}}");
    }
    json_.push_back(']');
    return EF_OK;
  }

 private:
  struct Item {
    std::string owner, rid, created_text, ip, payload;
    bool has_created_text = false, has_ip = false, has_payload = false;
    int64_t created_ms = 0;
  };
  std::vector<Item> items_;
};

class PageCall : public JsonCall {
 public:
  PageCall(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h)
      : JsonCall(info.Env(), std::move(h)) {
    owner_ = ArgString(info, 0);
    limit_ = static_cast<size_t>(ArgNumber(info, 1));
    has_cursor_ = ArgOptString(info, 2, &cursor_);
  }

 protected:
  int Run(ef_store *st) override {
    PageHolder held;
    int rc = ef_feed_page(st, owner_.c_str(),
                          has_cursor_ ? cursor_.c_str() : nullptr, limit_,
                          &held.page);
    if (rc != EF_OK) return Fail(st, rc);
    AppendPageJson(&json_, held.page);
    return EF_OK;
  }

 private:
  std::string owner_, cursor_;
  bool has_cursor_ = false;
  size_t limit_ = 0;
};

class GetCall : public JsonCall {
 public:
  GetCall(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h)
      : JsonCall(info.Env(), std::move(h)) {
    owner_ = ArgString(info, 0);
    rid_ = ArgString(info, 1);
  }

 protected:
  int Run(ef_store *st) override {
    int rc;
    EntryPtr e = GetEntry(st, owner_, rid_, &rc);
    if (rc == EF_ENOTFOUND) {  // resolves to null
      json_ = "null";
      return EF_OK;
    }
    if (rc != EF_OK) return Fail(st, rc);
    AppendEntryJson(&json_, *e);
    return EF_OK;
  }

 private:
  std::string owner_, rid_;
};

class UnreadCall : public Call {
 public:
  UnreadCall(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h)
      : Call(info.Env(), std::move(h)), owner_(ArgString(info, 0)) {}

 protected:
  int Run(ef_store *st) override {
    int rc = ef_unread_count(st, owner_.c_str(), &count_);
    return rc == EF_OK ? rc : Fail(st, rc);
  }
  Napi::Value Result(Napi::Env env) override { return Count(env, count_); }

 private:
  std::string owner_;
  uint64_t count_ = 0;
};

class MarkReadCall : public Call {
 public:
  MarkReadCall(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h)
      : Call(info.Env(), std::move(h)), owner_(ArgString(info, 0)) {
    all_ = info[1].IsUndefined();
    if (!all_) rid_ = ArgString(info, 1);
  }

 protected:
  int Run(ef_store *st) override {
    int rc = all_ ? ef_mark_all_read(st, owner_.c_str())
                  : ef_mark_read(st, owner_.c_str(), rid_.c_str());
    return rc == EF_OK ? rc : Fail(st, rc);
  }

 private:
  std::string owner_, rid_;
  bool all_ = false;
};

class SweepCall : public Call {
 public:
  using Call::Call;

 protected:
  int Run(ef_store *st) override {
    int rc = ef_sweep(st, &s_);
    return rc == EF_OK ? rc : Fail(st, rc);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("nowMs", Napi::Number::New(env, static_cast<double>(s_.now_ms)));
    o.Set("keysDestroyed", Count(env, s_.keys_destroyed));
    o.Set("keyringSlotsWiped", Count(env, s_.keyring_wiped));
    o.Set("entriesDeleted", Count(env, s_.entries_deleted));
    o.Set("markersDropped", Count(env, s_.markers_dropped));
    o.Set("recordsResealed", Count(env, s_.records_resealed));
    o.Set("legacySealed", Count(env, s_.legacy_sealed));
    o.Set("batches", Count(env, s_.batches));
    return o;
  }

 private:
  ef_sweep_stats s_ = {};
};

class MigrateCall : public Call {
 public:
  MigrateCall(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h)
      : Call(info.Env(), std::move(h)) {
    opts_.dry_run = info[0].ToBoolean().Value() ? 1 : 0;
    opts_.batch = static_cast<uint32_t>(ArgNumber(info, 1));
  }

 protected:
  int Run(ef_store *st) override {
    int rc = ef_migrate(st, &opts_, &s_);
    return rc == EF_OK ? rc : Fail(st, rc);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("dryRun", Napi::Boolean::New(env, opts_.dry_run != 0));
    o.Set("owners", Count(env, s_.owners));
    o.Set("elements", Count(env, s_.elements));
    o.Set("migrated", Count(env, s_.migrated));
    o.Set("duplicatesMerged", Count(env, s_.duplicates));
    o.Set("quarantined", Count(env, s_.quarantined));
    o.Set("keptWithoutIp", Count(env, s_.kept_without_ip));
    o.Set("markersKept", Count(env, s_.markers_kept));
    o.Set("orphanMarkers", Count(env, s_.orphan_markers));
    o.Set("batches", Count(env, s_.batches));
    return o;
  }

 private:
  ef_migrate_opts opts_ = {};
  ef_migrate_stats s_ = {};
};

class CheckCall : public Call {
 public:
  CheckCall(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h)
      : Call(info.Env(), std::move(h)) {
    strict_ = info[0].ToBoolean().Value();
  }

 protected:
  // Violations listed at most; the count says how many there were.
  static constexpr size_t kMaxListed = 1000;

  int Run(ef_store *st) override {
    ef_check_opts opts = {};
    opts.strict = strict_ ? 1 : 0;
    opts.report = Report;
    opts.report_ctx = this;
    int rc = ef_check(st, &opts, &s_);
    return rc == EF_OK ? rc : Fail(st, rc);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("ok", Napi::Boolean::New(env, s_.violations == 0));
    o.Set("violations", Count(env, s_.violations));
    o.Set("keys", Count(env, s_.keys));
    o.Set("entries", Count(env, s_.entries));
    o.Set("indexKeys", Count(env, s_.index_keys));
    o.Set("unreadMarkers", Count(env, s_.markers));
    o.Set("legacyArrays", Count(env, s_.legacy_arrays));
    o.Set("quarantined", Count(env, s_.quarantined));
    Napi::Array list = Napi::Array::New(env, found_.size());
    for (size_t i = 0; i < found_.size(); i++) {
      Napi::Object v = Napi::Object::New(env);
      v.Set("violation", found_[i].first);
      v.Set("key", found_[i].second);
      list.Set(static_cast<uint32_t>(i), v);
    }
    o.Set("found", list);
    return o;
  }

 private:
  static void Report(const char *what, const char *key, void *ctx) {
    auto *self = static_cast<CheckCall *>(ctx);
    if (self->found_.size() < kMaxListed)
      self->found_.emplace_back(what, key ? key : "");
  }

  bool strict_ = false;
  ef_check_stats s_ = {};
  std::vector<std::pair<std::string, std::string>> found_;
};

}  // namespace

Napi::Value StartOpen(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h) {
  return Call::Start(new OpenCall(info.Env(), std::move(h)));
}

Napi::Value StartClose(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h) {
  Napi::Env env = info.Env();
  if (!h->BeginClose()) {  // closed already: closing twice is fine
    auto d = Napi::Promise::Deferred::New(env);
    d.Resolve(env.Undefined());
    return d.Promise();
  }
  return Call::Start(new CloseCall(env, std::move(h)), false);
}

#define EF_NODE_START(name, type)                                             \
  Napi::Value name(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h) { \
    return Call::Start(new type(info, std::move(h)));                        \
  }
EF_NODE_START(StartFinalize, FinalizeCall)
EF_NODE_START(StartFinalizeBatch, FinalizeBatchCall)
EF_NODE_START(StartPage, PageCall)
EF_NODE_START(StartGet, GetCall)
EF_NODE_START(StartUnread, UnreadCall)
EF_NODE_START(StartMarkRead, MarkReadCall)
EF_NODE_START(StartMarkAllRead, MarkReadCall)
EF_NODE_START(StartMigrate, MigrateCall)
EF_NODE_START(StartCheck, CheckCall)
#undef EF_NODE_START

// The read runs here, on the JS thread, only where the library promises
// not to wait (no lock held elsewhere is waited for, nothing is synced);
// anything else, an error included, is left to StartPage on the pool,
// which reports it as usual.
Napi::Value PageNowOrNull(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h) {
  Napi::Env env = info.Env();
  std::string owner = ArgString(info, 0), cursor, json;
  size_t limit = static_cast<size_t>(ArgNumber(info, 1));
  bool has_cursor = ArgOptString(info, 2, &cursor);
  int rc = EF_EBUSY;

  if (!h->Enter()) return env.Null();  // closed: the pool call says so
  try {
    ef_store *st = h->TryUse();
    PageHolder held;
    if (st)
      rc = ef_feed_page_try(st, owner.c_str(),
                            has_cursor ? cursor.c_str() : nullptr, limit,
                            &held.page);
    if (rc == EF_OK) AppendPageJson(&json, held.page);
  } catch (const std::bad_alloc &) {
    rc = EF_ENOMEM;
  }
  h->Leave();
  if (rc != EF_OK) return env.Null();
  return Napi::String::New(env, json);
}

Napi::Value StartSweep(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h) {
  return Call::Start(new SweepCall(info.Env(), std::move(h)));
}

}  // namespace edgefeed_node
