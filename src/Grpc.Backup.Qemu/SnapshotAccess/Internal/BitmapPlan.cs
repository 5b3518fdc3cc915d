namespace Grpc.Backup.Qemu.Internal;

/// <summary>The decision for one device's bitmap, made before anything is changed.</summary>
/// <param name="Outcome">What the backup will report.</param>
/// <param name="RemoveExisting">Whether the existing stable bitmap must be removed first.</param>
internal sealed record BitmapPlan(BitmapOutcome Outcome, bool RemoveExisting);
