// ops.h - every Store method as one call on libuv's thread pool.
//
// A call copies its arguments on the JS thread, runs the library on a pool
// thread (Run: never touches JS), and settles its promise back on the JS
// thread (Result, or a rejection with the library's code and detail). The
// event loop never waits for a sync, a lock or a page read.
#ifndef EDGEFEED_NODE_OPS_H
#define EDGEFEED_NODE_OPS_H

#include <napi.h>

#include <memory>
#include <string>

#include "handle.h"

namespace edgefeed_node {

// An Error whose code is the C name ("EF_EINVAL"), errno the C value, and
// message the detail (or the code's text when there is none).
Napi::Error MakeError(Napi::Env env, const Failure &f);

class Call : public Napi::AsyncWorker {
 public:
  Call(Napi::Env env, std::shared_ptr<Handle> handle);

  // Queue the call and return its promise. A counted call (every call but
  // close's) enters the handle first: once the store is closed, it returns
  // a promise rejected with EF_EINVAL "store is closed" instead (and
  // deletes the call). Either way the caller must not touch call again.
  static Napi::Value Start(Call *call, bool counted = true);

 protected:
  // Pool thread: do the work on the open store; EF_OK, EF_EXISTS or an
  // error, its detail recorded by Fail().
  virtual int Run(ef_store *st) = 0;
  // JS thread: the value the promise resolves to after Run succeeded.
  virtual Napi::Value Result(Napi::Env env);
  // Pool thread: record rc with the calling thread's detail of st (or
  // ours, when given) and return rc.
  int Fail(ef_store *st, int rc, const std::string &ours = std::string());

  int rc_ = EF_OK;

 private:
  void Execute() override;
  void Settle();
  void OnOK() override;
  void OnError(const Napi::Error &e) override;

  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Handle> handle_;
  Failure failure_;
};

// Store methods, each given the arguments of its JS call (already checked
// by index.js; these throw a TypeError only if called around it).
Napi::Value StartOpen(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h);
Napi::Value StartClose(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h);
Napi::Value StartFinalize(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h);
Napi::Value StartFinalizeBatch(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h);
Napi::Value StartPage(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h);
// On the JS thread, at once: the page as JSON text if the library can read
// it without waiting (ef_feed_page_try), else null (then StartPage).
Napi::Value PageNowOrNull(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h);
Napi::Value StartGet(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h);
Napi::Value StartUnread(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h);
Napi::Value StartMarkRead(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h);
Napi::Value StartMarkAllRead(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h);
Napi::Value StartSweep(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h);
Napi::Value StartMigrate(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h);
Napi::Value StartCheck(const Napi::CallbackInfo &info, std::shared_ptr<Handle> h);

}  // namespace edgefeed_node

#endif
