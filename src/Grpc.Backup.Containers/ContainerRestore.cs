using Grpc.Backup.Protocol;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Grpc.Backup.Containers.Internal;
using Grpc.Backup.Containers.Internal.Interop;

namespace Grpc.Backup.Containers;

/// <summary>
/// Restores a container's tree from an untrusted tar archive (RestoreContainerInit's tar_path or tar_fd) into a fresh
/// root file system: the host creates the target directory, owned by the container's root; GNU tar extracts inside the
/// container's user namespace, so container uid 0 becomes host 100000 and nothing is written that the container's root
/// could not write anyway.
/// </summary>
/// <remarks>
/// <para>Validation and extraction are one pass over one stream (<see cref="TarArchiveValidator"/>): the archive is
/// read once, decompressed by the host, and each member's bytes reach tar's stdin only after that member is accepted.
/// tar therefore extracts exactly the bytes that were validated: no second read that the provider could race, no
/// private copy, and a pipe works as well as a file.</para>
/// <para>A member refused halfway means tar has extracted the accepted members before it; on any failure the target
/// is removed, and it must not exist beforehand, so nothing else is ever touched. Privileged restores are refused, as
/// Proxmox does for external archives.</para>
/// </remarks>
public static class ContainerRestore
{
    /// <summary>Validates and extracts <paramref name="archive"/> (read to its end; not disposed).</summary>
    /// <exception cref="TarArchiveRejectedException">The archive was refused; the target has been removed.</exception>
    /// <exception cref="ContainerRestoreException">The restore is refused (privileged, target exists) or tar failed; the target has been removed.</exception>
    public static async Task<ContainerRestoreResult> RunAsync(Stream archive, ContainerRestoreOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(archive);
        ArgumentNullException.ThrowIfNull(options);
        IdMap idMap = options.IdMap;
        if (idMap.IsPrivileged)
        {
            throw new ContainerRestoreException(
                $"refusing to restore a privileged container (id map: {idMap}) from an external archive: extraction would run as host root; "
                + "restore it as an unprivileged container with an id map");
        }
        MemberSelection? selection = options.Paths is null ? null : new MemberSelection(options.Paths.Select(ArchiveMemberPath.NormalizeRequested));
        string target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.TargetDirectory));
        CheckParent(target);
        CreateTarget(target, idMap);

        TarValidationOptions validation = options.Validation.IdMap is null ? options.Validation with { IdMap = idMap } : options.Validation;
        try
        {
            return await ExtractAsync(archive, target, idMap, validation, selection, options.BytesPerSecond, cancellationToken);
        }
        catch (Exception e)
        {
            string? leftover = RemoveTarget(target);
            if (leftover is null)
            {
                throw;
            }
            throw new ContainerRestoreException($"{e.Message}; and removing the target failed: {leftover}", e);
        }
    }

    private static async Task<ContainerRestoreResult> ExtractAsync(Stream archive, string target, IdMap idMap, TarValidationOptions validation,
        MemberSelection? selection, ulong bytesPerSecond, CancellationToken cancellationToken)
    {
        await using UserNamespace ns = await UserNamespace.CreateAsync(idMap, cancellationToken);
        // The target's parent is root-only: tar, as the container's root, reaches the target through a bind over it.
        string reachable = await ns.BindOverParentAsync(target, cancellationToken);
        Process tar = ns.Command("tar",
        [
            "--extract", "--file=-", "--numeric-owner", "--same-owner", "--same-permissions",
            "--xattrs", "--xattrs-include=*", "--acls", "--directory=" + reachable,
        ]).Start();
        Task<string> errors = tar.StandardError.ReadToEndAsync(CancellationToken.None);
        Task<string> output = tar.StandardOutput.ReadToEndAsync(CancellationToken.None);
        try
        {
            TarValidationReport report;
            try
            {
                report = await TarArchiveValidator.ValidateAsync(archive, validation, tar.StandardInput.BaseStream, new BandwidthThrottle(bytesPerSecond),
                    cancellationToken, selection);
                tar.StandardInput.Close();
            }
            catch (IOException e) when (tar.WaitForExit(TimeSpan.FromSeconds(5)))
            {
                // tar stopped reading because it failed, and its stderr says why (not the archive's stream failing).
                throw new ContainerRestoreException($"tar stopped extracting (exit status {tar.ExitCode}): {(await errors).Trim()}", e);
            }
            await tar.WaitForExitAsync(cancellationToken);
            string stderr = await errors;
            await output;
            if (tar.ExitCode != 0)
            {
                throw new ContainerRestoreException($"tar failed with exit status {tar.ExitCode}: {stderr.Trim()}");
            }
            IReadOnlyList<string> tarWarnings = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            return new ContainerRestoreResult(report, [.. report.Warnings, .. tarWarnings]);
        }
        finally
        {
            ProcessRunner.KillAndDispose(tar);
        }
    }

    /// <summary>
    /// A restored tree holds the container's setuid files (owned by its root, a host uid like 100000): a host user who
    /// can reach them gains that uid. As Proxmox keeps a rootfs, the target's parent must be root's alone.
    /// </summary>
    private static void CheckParent(string target)
    {
        string parent = Path.GetDirectoryName(target) ?? throw new ContainerRestoreException($"target '{target}' has no parent directory");
        var info = new DirectoryInfo(parent);
        if (!info.Exists || info.LinkTarget is not null)
        {
            throw new ContainerRestoreException($"the target's parent '{parent}' does not exist or is a symlink; create it as a root-only directory (mode 0700)");
        }
        uint owner;
        using (var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(
            Libc.open(parent, Libc.OPath | Libc.ODirectory | Libc.ONofollow | Libc.OCloexec, 0), ownsHandle: true))
        {
            if (handle.IsInvalid)
            {
                throw new ContainerRestoreException($"cannot open the target's parent '{parent}': {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
            }
            owner = Transport.PassedFileInfo.Get(handle).OwnerUid;
        }
        if (owner != 0 || ((int)info.UnixFileMode & 0b000_111_111) != 0)
        {
            throw new ContainerRestoreException($"the target's parent '{parent}' must be owned by root with mode 0700, so that host users cannot reach "
                + "the restored tree's setuid files; restore under such a directory");
        }
    }

    private static void CreateTarget(string target, IdMap idMap)
    {
        // mkdir, not Directory.CreateDirectory: an existing target (or one created concurrently) must fail, not be reused.
        if (Libc.mkdir(target, Convert.ToUInt32("700", 8)) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new ContainerRestoreException(errno == Libc.Eexist
                ? $"target '{target}' already exists; restore only creates a fresh root file system"
                : $"cannot create target '{target}': {Marshal.GetPInvokeErrorMessage(errno)}");
        }
        if (Libc.lchown(target, idMap.RootHostUid, idMap.RootHostGid) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            RemoveTarget(target);
            throw new ContainerRestoreException($"cannot give target '{target}' to the container's root: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
        // The archive's "." member sets the final mode; until then only the container's root may enter.
    }

    /// <summary>Removes the target tree (symlinks are removed, never followed); null on success, the reason otherwise.</summary>
    private static string? RemoveTarget(string target)
    {
        try
        {
            Directory.Delete(target, recursive: true);
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return e.Message;
        }
    }
}
