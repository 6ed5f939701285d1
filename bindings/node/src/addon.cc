// addon.cc - the native module: class Store and the library's limits.
//
// index.js is the public API: it checks and converts every argument, then
// calls these methods with plain strings and numbers. Node-API modules are
// context-aware: each worker_thread gets its own instance of this module,
// and no JS value is shared between them (the one process-wide state is the
// store registry of handle.cc, which holds no JS value).
#include <napi.h>

#include <memory>
#include <string>

#include "handle.h"
#include "ops.h"

#include <cstring>

namespace edgefeed_node {

class Store : public Napi::ObjectWrap<Store> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "Store",
        {
            InstanceMethod<&Store::Open>("open"),
            InstanceMethod<&Store::Close>("close"),
            InstanceMethod<&Store::Finalize>("finalize"),
            InstanceMethod<&Store::FinalizeBatch>("finalizeBatch"),
            InstanceMethod<&Store::Page>("page"),
            InstanceMethod<&Store::PageNow>("pageNow"),
            InstanceMethod<&Store::Get>("get"),
            InstanceMethod<&Store::Unread>("unread"),
            InstanceMethod<&Store::MarkRead>("markRead"),
            InstanceMethod<&Store::MarkAllRead>("markAllRead"),
            InstanceMethod<&Store::Sweep>("sweep"),
            InstanceMethod<&Store::Migrate>("migrate"),
            InstanceMethod<&Store::Check>("check"),
        });
  }

  // new Store(dir, feedCap, feedTtlMs, ipRetentionMs, flags): nothing is
  // opened until open() or the first call.
  explicit Store(const Napi::CallbackInfo &info)
      : Napi::ObjectWrap<Store>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 5 || !info[0].IsString())
      throw Napi::TypeError::New(env, "edgefeed: internal: new Store(dir, "
                                      "feedCap, feedTtlMs, ipRetentionMs, flags)");
    OpenConfig cfg;
    cfg.feed_cap = info[1].As<Napi::Number>().Uint32Value();
    cfg.feed_ttl_ms = info[2].As<Napi::Number>().Int64Value();
    cfg.ip_retention_ms = info[3].As<Napi::Number>().Int64Value();
    cfg.flags = info[4].As<Napi::Number>().Uint32Value();
    handle_ = std::make_shared<Handle>(
        info[0].As<Napi::String>().Utf8Value(), cfg);
  }

  // Garbage-collected, or its environment torn down, without close().
  ~Store() override { handle_->Abandon(); }

 private:
  Napi::Value Open(const Napi::CallbackInfo &i) { return Guard(i, StartOpen); }
  Napi::Value Close(const Napi::CallbackInfo &i) { return Guard(i, StartClose); }
  Napi::Value Finalize(const Napi::CallbackInfo &i) { return Guard(i, StartFinalize); }
  Napi::Value FinalizeBatch(const Napi::CallbackInfo &i) { return Guard(i, StartFinalizeBatch); }
  Napi::Value Page(const Napi::CallbackInfo &i) { return Guard(i, StartPage); }
  Napi::Value PageNow(const Napi::CallbackInfo &i) { return Guard(i, PageNowOrNull); }
  Napi::Value Get(const Napi::CallbackInfo &i) { return Guard(i, StartGet); }
  Napi::Value Unread(const Napi::CallbackInfo &i) { return Guard(i, StartUnread); }
  Napi::Value MarkRead(const Napi::CallbackInfo &i) { return Guard(i, StartMarkRead); }
  Napi::Value MarkAllRead(const Napi::CallbackInfo &i) { return Guard(i, StartMarkAllRead); }
  Napi::Value Sweep(const Napi::CallbackInfo &i) { return Guard(i, StartSweep); }
  Napi::Value Migrate(const Napi::CallbackInfo &i) { return Guard(i, StartMigrate); }
  Napi::Value Check(const Napi::CallbackInfo &i) { return Guard(i, StartCheck); }

  // Every method: a C++ exception becomes the JS exception it stands for.
  // While a worker_thread is being terminated, Node-API calls fail and
  // nothing can be thrown into its JS any more; node-addon-api's own
  // rethrow would then escape as a C++ exception and abort the process.
  template <typename F>
  Napi::Value Guard(const Napi::CallbackInfo &i, F start) {
    try {
      return start(i, handle_);
    } catch (const Napi::Error &e) {
      try {
        e.ThrowAsJavaScriptException();
      } catch (...) {  // the environment is going away: nobody to tell
      }
      return Napi::Value();
    }
  }

  std::shared_ptr<Handle> handle_;  // shared with the calls in flight
};

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports) {
    Napi::Object limits = Napi::Object::New(env);
    limits.Set("payloadMax", Napi::Number::New(env, EF_PAYLOAD_MAX));
    limits.Set("createdMax",
               Napi::Number::New(env, static_cast<double>(EF_CREATED_MAX)));
    limits.Set("pageLimitMax", Napi::Number::New(env, EF_PAGE_LIMIT_MAX));
    limits.Set("pageLimitDefault", Napi::Number::New(env, EF_PAGE_LIMIT_DEFAULT));
    limits.Set("batchMax", Napi::Number::New(env, EF_BATCH_MAX));
    Napi::Object flags = Napi::Object::New(env);
    flags.Set("noSync", Napi::Number::New(env, EF_NOSYNC));
    flags.Set("readOnly", Napi::Number::New(env, EF_RDONLY));
    flags.Set("groupCommit", Napi::Number::New(env, EF_GROUP_COMMIT));
    flags.Set("noGroupCommit", Napi::Number::New(env, EF_NO_GROUP_COMMIT));
    flags.Set("noCreate", Napi::Number::New(env, EF_NOCREATE));
    flags.Set("noWait", Napi::Number::New(env, EF_NOWAIT));
    Napi::Object codes = Napi::Object::New(env);  // "EF_EINVAL" -> -1, ...
    for (int rc = 1; rc >= -64; rc--) {
      const char *name = ef_err_name(rc);
      if (name && strncmp(name, "EF_", 3) == 0 && strcmp(name, "EF_UNKNOWN") != 0)
        codes.Set(name, Napi::Number::New(env, rc));
    }
    DefineAddon(exports,
                {
                    InstanceValue("Store", Store::Define(env)),
                    InstanceValue("limits", limits),
                    InstanceValue("flags", flags),
                    InstanceValue("codes", codes),
                    InstanceValue("version", Napi::String::New(env, ef_version())),
                });
  }
};

}  // namespace edgefeed_node

// the macro pastes the name into an identifier: no "::" in it
using EdgefeedAddon = edgefeed_node::Addon;
NODE_API_ADDON(EdgefeedAddon)
