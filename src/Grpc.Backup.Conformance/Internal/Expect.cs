using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Conformance.Internal;

/// <summary>Assertions on what the provider answered; a broken one fails the running check with its message.</summary>
internal static class Expect
{
    public static void That(bool condition, string failure)
    {
        if (!condition)
        {
            throw new CheckFailedException(failure);
        }
    }

    /// <summary>Skips the running check unless <paramref name="condition"/> holds.</summary>
    public static void Requires(bool condition, string reason)
    {
        if (!condition)
        {
            throw new CheckSkippedException(reason);
        }
    }

    /// <summary>Awaits a call that must succeed.</summary>
    public static async Task<T> OkAsync<T>(string call, Func<AsyncUnaryCall<T>> start)
    {
        try
        {
            return await start();
        }
        catch (RpcException e)
        {
            throw new CheckFailedException($"{call}: expected OK, got {Describe(e)}", e);
        }
    }

    /// <summary>
    /// Awaits a call that must fail with <paramref name="code"/> and, when any are given, an ErrorInfo reason among
    /// <paramref name="reasons"/> (the codes and reasons the protos document for the case).
    /// </summary>
    public static async Task StatusAsync<T>(string call, Func<AsyncUnaryCall<T>> start, StatusCode code, params ErrorReason[] reasons)
    {
        try
        {
            await start();
        }
        catch (RpcException e)
        {
            Matches(call, e, [code], reasons);
            return;
        }
        throw new CheckFailedException($"{call}: expected {Expected([code], reasons)}, got OK");
    }

    /// <summary>As <see cref="StatusAsync"/>, accepting any of <paramref name="codes"/> (where the contract allows several).</summary>
    public static async Task StatusAsync<T>(string call, Func<AsyncUnaryCall<T>> start, StatusCode[] codes, params ErrorReason[] reasons)
    {
        try
        {
            await start();
        }
        catch (RpcException e)
        {
            Matches(call, e, codes, reasons);
            return;
        }
        throw new CheckFailedException($"{call}: expected {Expected(codes, reasons)}, got OK");
    }

    /// <summary>Checks a failure the caller caught itself.</summary>
    public static void Matches(string call, RpcException e, StatusCode[] codes, ErrorReason[] reasons)
    {
        ErrorReason? reason = e.GetReason();
        // Whatever the case, a known reason travels with its one status code (protos/README.md, "General errors").
        if (reason is { } carried && carried != ErrorReason.Unspecified && e.StatusCode != ProviderErrors.StatusOf(carried))
        {
            throw new CheckFailedException($"{call}: reason {ProviderErrors.ReasonName(carried)} must come with status "
                + $"{ProviderErrors.StatusOf(carried)}, got {Describe(e)}", e);
        }
        if (!codes.Contains(e.StatusCode) || (reasons.Length > 0 && (reason is null || !reasons.Contains(reason.Value))))
        {
            throw new CheckFailedException($"{call}: expected {Expected(codes, reasons)}, got {Describe(e)}", e);
        }
    }

    public static string Describe(RpcException e)
    {
        ErrorReason? reason = e.GetReason(out string? raw);
        string shown = reason is { } known ? ProviderErrors.ReasonName(known) : raw ?? "no reason";
        string detail = e.Status.Detail.Length > 200 ? e.Status.Detail[..200] + "…" : e.Status.Detail;
        return $"{e.StatusCode} ({shown}): {detail}";
    }

    private static string Expected(StatusCode[] codes, ErrorReason[] reasons) =>
        string.Join(" or ", codes) + (reasons.Length > 0 ? " with reason " + string.Join(" or ", reasons.Select(ProviderErrors.ReasonName)) : "");
}
