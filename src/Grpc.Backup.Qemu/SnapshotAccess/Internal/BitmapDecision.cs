namespace Grpc.Backup.Qemu.Internal;

/// <summary>Maps the provider's request and the stable bitmap's state to what this backup does.</summary>
internal static class BitmapDecision
{
    public static BitmapPlan Decide(BitmapRequest request, DirtyBitmapInfo? existing) => request switch
    {
        BitmapRequest.Use when existing is { IsUsableBase: true } => new BitmapPlan(BitmapOutcome.Reuse, RemoveExisting: false),
        // A missing, inconsistent or non-recording bitmap cannot be a base: drop it and start over, full.
        BitmapRequest.Use or BitmapRequest.New => new BitmapPlan(BitmapOutcome.New, RemoveExisting: existing is not null),
        BitmapRequest.None => new BitmapPlan(BitmapOutcome.None, RemoveExisting: existing is not null),
        _ => throw new ArgumentOutOfRangeException(nameof(request), request, "Unknown bitmap request."),
    };
}
