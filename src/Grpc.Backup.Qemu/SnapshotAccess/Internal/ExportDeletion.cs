using System.Text.Json.Nodes;

namespace Grpc.Backup.Qemu.Internal;

/// <summary>Removes an NBD export and waits until QEMU has really let go of its node.</summary>
internal static class ExportDeletion
{
    /// <summary>
    /// Tries a safe delete first; QEMU refuses it while a client is connected ("still in use"), and then
    /// a hard delete drops the clients (they see ENOTCONN). Only <c>BLOCK_EXPORT_DELETED</c> means the
    /// node is free for <c>blockdev-del</c>; the reply alone does not.
    /// </summary>
    public static async Task DeleteAsync(QmpClient qmp, string exportId, TimeSpan timeout, SnapshotLog log, CancellationToken cancellationToken)
    {
        // Armed before the command: QEMU emits the event before it replies.
        using QmpEventWaiter deleted = qmp.CreateEventWaiter("BLOCK_EXPORT_DELETED", data => string.Equals((string?)data["id"], exportId, StringComparison.Ordinal));
        bool hard = false;
        try
        {
            await qmp.ExecuteAsync("block-export-del", new JsonObject { ["id"] = exportId }, CancellationToken.None);
        }
        catch (QmpCommandException ex)
        {
            log.Info($"safe delete of export {exportId} refused ({ex.Description}); forcing it");
            await HardDeleteAsync(qmp, exportId);
            hard = true;
        }

        try
        {
            await deleted.WaitAsync(timeout, cancellationToken);
        }
        catch (Exception ex) when (!hard && ex is TimeoutException or OperationCanceledException)
        {
            // A safe delete waits for in-flight requests of clients that are already gone; do not wait forever.
            log.Warning($"export {exportId} was not deleted within {timeout}; forcing it");
            await HardDeleteAsync(qmp, exportId);
            await deleted.WaitAsync(timeout, CancellationToken.None);
        }
    }

    private static async Task HardDeleteAsync(QmpClient qmp, string exportId)
        => await qmp.ExecuteAsync("block-export-del", new JsonObject { ["id"] = exportId, ["mode"] = "hard" }, CancellationToken.None);
}
