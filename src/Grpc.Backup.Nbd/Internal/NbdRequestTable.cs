using System.Diagnostics.CodeAnalysis;

namespace Grpc.Backup.Nbd.Internal;

/// <summary>
/// The in-flight request slots of one connection, and the single lock that orders the three
/// parties touching them: the issuing caller, the reply reader, and cancellation/teardown.
/// A slot returns to the free list only when both the caller has consumed the result and the
/// server's final reply has been read (or the connection died), so a late reply can never land
/// in a reused slot or in a buffer the caller already got back.
/// </summary>
[SuppressMessage("Design", "CA1001", Justification = "SemaphoreSlim only holds an OS handle once AvailableWaitHandle is used, which it never is here; disposing it could break callers still waiting during teardown.")]
internal sealed class NbdRequestTable
{
    private readonly Lock _lock = new();
    private readonly NbdRequest[] _requests;
    private readonly int[] _free;
    private readonly SemaphoreSlim _available;
    private int _freeCount;
    private Exception? _failure;

    public NbdRequestTable(int capacity)
    {
        _requests = new NbdRequest[capacity];
        _free = new int[capacity];
        for (var i = 0; i < capacity; i++)
        {
            _requests[i] = new NbdRequest(this, i);
            _free[i] = capacity - 1 - i;
        }

        _freeCount = capacity;
        _available = new SemaphoreSlim(capacity, capacity);
    }

    public Exception? Failure => Volatile.Read(ref _failure);

    /// <summary>Number of requests currently held by callers or waiting for the server.</summary>
    public int InFlight
    {
        get
        {
            lock (_lock)
            {
                return _requests.Length - _freeCount;
            }
        }
    }

    public void ThrowIfFailed()
    {
        var failure = Failure;
        if (failure is not null)
        {
            throw ConnectionUnusable(failure);
        }
    }

    /// <summary>Waits for a free slot and takes it for the calling operation.</summary>
    public async ValueTask<NbdRequest> RentAsync(CancellationToken cancellationToken)
    {
        ThrowIfFailed();
        await _available.WaitAsync(cancellationToken);
        lock (_lock)
        {
            if (_failure is null)
            {
                var request = _requests[_free[--_freeCount]];
                request.Prepare();
                return request;
            }
        }

        _available.Release();
        throw ConnectionUnusable(_failure);
    }

    /// <summary>Called under the send lock just before the request's first byte goes out.</summary>
    public void MarkSent(NbdRequest request)
    {
        lock (_lock)
        {
            if (_failure is not null)
            {
                throw ConnectionUnusable(_failure);
            }

            request.WireOwned = true;
        }
    }

    /// <summary>The request a reply is addressed to, or null when no such request is outstanding.</summary>
    public NbdRequest? Find(ulong cookie)
    {
        var index = (uint)cookie;
        if (index >= (uint)_requests.Length)
        {
            return null;
        }

        lock (_lock)
        {
            var request = _requests[index];
            return request.WireOwned && request.Cookie == cookie ? request : null;
        }
    }

    /// <summary>
    /// Claims the caller's buffer for the reader. Returns false when the caller is gone
    /// (cancelled or failed): the payload must then be discarded instead.
    /// </summary>
    public bool BeginReaderWrite(NbdRequest request)
    {
        lock (_lock)
        {
            if (request.Completed || !request.WireOwned)
            {
                return false;
            }

            request.ReaderBusy = true;
            return true;
        }
    }

    public void EndReaderWrite(NbdRequest request)
    {
        lock (_lock)
        {
            request.ReaderBusy = false;

            // Cancellation or teardown arrived while we were writing into the buffer and was
            // deferred until now, so the caller never sees its buffer still being written.
            if (!request.Completed && (request.Abandoned || !request.WireOwned))
            {
                request.Completed = true;
                request.SetException(request.Abandoned
                    ? new OperationCanceledException(request.CancellationToken)
                    : _failure!);
            }

            FreeIfUnowned(request);
        }
    }

    /// <summary>The server's final reply for <paramref name="request"/> has been read.</summary>
    public void Finish(NbdRequest request, Exception? error)
    {
        lock (_lock)
        {
            if (!request.WireOwned)
            {
                // Teardown already failed and released it; the slot is never reused after that.
                return;
            }

            request.WireOwned = false;
            if (!request.Completed)
            {
                request.Completed = true;
                if (error is null)
                {
                    request.SetResult();
                }
                else
                {
                    request.SetException(error);
                }
            }

            FreeIfUnowned(request);
        }
    }

    /// <summary>Cancellation callback: fail the caller now unless the reader is writing its buffer.</summary>
    public void Cancel(NbdRequest request)
    {
        lock (_lock)
        {
            if (request.Completed)
            {
                return;
            }

            request.Abandoned = true;
            if (!request.ReaderBusy)
            {
                request.Completed = true;
                request.SetException(new OperationCanceledException(request.CancellationToken));
            }
        }
    }

    /// <summary>The issuing caller is done with the slot.</summary>
    public void ReleaseCaller(NbdRequest request)
    {
        lock (_lock)
        {
            request.CallerOwned = false;
            FreeIfUnowned(request);
        }
    }

    /// <summary>
    /// The connection is dead: fail every outstanding request with <paramref name="failure"/>
    /// (only the first failure is kept) and refuse new ones.
    /// </summary>
    public void Fail(Exception failure)
    {
        lock (_lock)
        {
            _failure ??= failure;
            foreach (var request in _requests)
            {
                if (!request.WireOwned)
                {
                    continue;
                }

                request.WireOwned = false;
                if (request.ReaderBusy)
                {
                    // EndReaderWrite completes it once the reader lets go of the buffer.
                    continue;
                }

                if (!request.Completed)
                {
                    request.Completed = true;
                    request.SetException(_failure);
                }

                FreeIfUnowned(request);
            }
        }
    }

    private void FreeIfUnowned(NbdRequest request)
    {
        if (request.CallerOwned || request.WireOwned || request.ReaderBusy)
        {
            return;
        }

        _free[_freeCount++] = request.Index;
        _available.Release();
    }

    /// <summary>
    /// What a request issued after the connection died sees. A fresh exception per call: the
    /// original failure is shared by all the requests it took down and is kept as the cause.
    /// </summary>
    private static Exception ConnectionUnusable(Exception failure) => failure is ObjectDisposedException
        ? new ObjectDisposedException(nameof(NbdClient), "The NBD client has been disposed.")
        : new IOException($"The NBD connection is no longer usable: {failure.Message}", failure);
}
