// A move-only, type-erased completion handler (Asio 1.22.1 has no any_completion_handler).
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/associated_allocator.hpp>
#include <asio/associated_executor.hpp>
#include <asio/dispatch.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <asio/recycling_allocator.hpp>
#include <memory>
#include <type_traits>
#include <utility>

#include "fcgi/detail/asio_compat.hpp"
#include "fcgi/detail/running_in_this_thread.hpp"

namespace fcgi::detail {

template <class Signature>
class any_handler;

/// Holds a completion handler of signature void(Args...) and the outstanding work of its
/// executor. The holder is allocated with the handler's associated allocator (Asio's
/// thread-local recycling allocator by default, so steady state does not hit malloc) and freed
/// before the upcall, as Asio's allocator rules require. The cancellation slot is left as it is,
/// as Asio's own operations leave it: what the operations installed there stays harmless after
/// completion, and clearing it raced with a parallel_group emitting into it from another thread.
template <class... Args>
class any_handler<void(Args...)> {
    struct base {
        // Consumes *this; `keep` (may be empty) goes with the handler, released after it ran.
        virtual void complete(bool post, std::shared_ptr<void>&& keep, Args&&... args) = 0;
        virtual void destroy() noexcept = 0;  // frees without invoking

      protected:
        ~base() = default;
    };

    template <class Handler>
    struct holder final : base {
        using handler_executor = asio::associated_executor_t<Handler, asio::any_io_executor>;
        // decay: for executors without outstanding_work (use_future's) the result is E&&.
        using work_executor = std::decay_t<typename asio::prefer_result<
            handler_executor, asio::execution::outstanding_work_t::tracked_t>::type>;
        using allocator_type = typename std::allocator_traits<asio::associated_allocator_t<
            Handler, asio::recycling_allocator<void>>>::template rebind_alloc<holder>;

        template <class H>
        holder(H&& h, const asio::any_io_executor& io)
            : handler(std::forward<H>(h)),
              work(asio::prefer(asio::get_associated_executor(handler, io),
                                asio::execution::outstanding_work.tracked)) {}

        // `h` may be an lvalue: a named callback passed as the completion token is copied.
        template <class H>
        static holder* create(H&& h, const asio::any_io_executor& io) {
            allocator_type alloc(
                asio::get_associated_allocator(h, asio::recycling_allocator<void>()));
            holder* p = std::allocator_traits<allocator_type>::allocate(alloc, 1);
            try {
                return ::new (static_cast<void*>(p)) holder(std::forward<H>(h), io);
            } catch (...) {
                std::allocator_traits<allocator_type>::deallocate(alloc, p, 1);
                throw;
            }
        }

        void destroy() noexcept override {
            allocator_type alloc(
                asio::get_associated_allocator(handler, asio::recycling_allocator<void>()));
            this->~holder();
            std::allocator_traits<allocator_type>::deallocate(alloc, this, 1);
        }

        void complete(bool post, std::shared_ptr<void>&& keep, Args&&... args) override {
            Handler h(std::move(handler));
            work_executor ex(std::move(work));
            std::shared_ptr<void> kept(std::move(keep));  // released on return, or unwinding
            destroy();
            if (!post && detail::running_in_this_thread(ex)) {
                // What asio::dispatch would do, without type-erasing the handler into a
                // freshly allocated function object first.
                std::move(h)(std::move(args)...);
                return;
            }
            if (kept) {
                // Goes with the handler, so that it is released once the handler has run
                // there, or when the handler is destroyed unrun with its executor's context.
                auto with_keep = [h = std::move(h), kept = std::move(kept),
                                  ... a = std::move(args)]() mutable {
                    std::move(h)(std::move(a)...);
                };
                if (post)
                    asio::post(ex, std::move(with_keep));
                else
                    asio::dispatch(ex, std::move(with_keep));
                return;
            }
            auto bound = detail::append(std::move(h), std::move(args)...);
            if (post)
                asio::post(ex, std::move(bound));
            else
                asio::dispatch(ex, std::move(bound));
        }

        Handler handler;
        work_executor work;
    };

  public:
    any_handler() = default;

    /// Wraps `h`; `io` is the default executor when `h` has no associated one.
    template <class Handler>
    any_handler(Handler&& h, const asio::any_io_executor& io)
        : p_(holder<std::decay_t<Handler>>::create(std::forward<Handler>(h), io)) {}

    any_handler(any_handler&&) noexcept = default;
    any_handler& operator=(any_handler&&) noexcept = default;

    /// True while a handler is held.
    explicit operator bool() const noexcept { return p_ != nullptr; }

    /// Posts the handler with `args` to its executor; the holder is empty afterwards.
    template <class... A>
    void post(A&&... args) {
        finish(true, {}, pass<Args>(std::forward<A>(args))...);
    }

    /// Dispatches the handler (runs inline when already on its executor).
    template <class... A>
    void dispatch(A&&... args) {
        finish(false, {}, pass<Args>(std::forward<A>(args))...);
    }

    /// post(), with `keep` released only once the handler has returned (or thrown), on
    /// whichever executor it runs, or once it is destroyed unrun: the caller learns, from
    /// what `keep` owns, that the handler is done with.
    template <class... A>
    void post_holding(std::shared_ptr<void> keep, A&&... args) {
        finish(true, std::move(keep), pass<Args>(std::forward<A>(args))...);
    }

    /// dispatch(), holding `keep` as post_holding() does.
    template <class... A>
    void dispatch_holding(std::shared_ptr<void> keep, A&&... args) {
        finish(false, std::move(keep), pass<Args>(std::forward<A>(args))...);
    }

  private:
    // Takes the arguments converted already: `p_.release()->complete(..., pass(...))` released
    // the holder before converting them (C++17 sequences the callee first), so a conversion
    // that threw leaked the holder and lost the handler.
    void finish(bool post, std::shared_ptr<void>&& keep, Args&&... args) {
        p_.release()->complete(post, std::move(keep), std::forward<Args>(args)...);
    }

    // An rvalue of exactly T is passed on by reference, anything else converted to a T first:
    // a response handed down a chain of handlers is moved once, not once per layer.
    template <class T, class U>
    static decltype(auto) pass(U&& u) {
        if constexpr (std::is_same_v<std::remove_cvref_t<U>, T> && !std::is_lvalue_reference_v<U>)
            return static_cast<T&&>(u);
        else
            return T(std::forward<U>(u));
    }

    struct deleter {
        void operator()(base* b) const noexcept { b->destroy(); }
    };
    std::unique_ptr<base, deleter> p_;
};

}  // namespace fcgi::detail
