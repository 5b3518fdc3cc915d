using System.Diagnostics;
using System.Globalization;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// A provider's restore source of mechanism DIRECTORY, read as a pax tar stream so it goes through the same
/// validate-while-extract path as every archive. tar runs with the provider's uid and gid (setpriv), so the host reads
/// only what the provider itself could: a tree that links to host files gains nothing. Owners are taken as stored.
/// </summary>
internal static class DirectoryArchive
{
    public static Stream Open(string directory, uint providerUid, uint providerGid)
    {
        if (!Path.IsPathFullyQualified(directory) || !Directory.Exists(directory))
        {
            throw new BackupException($"the provider's restore directory '{directory}' is not an absolute path to a directory");
        }
        var info = new ProcessStartInfo("setpriv");
        foreach (string argument in (string[])[
            "--reuid=" + providerUid.ToString(CultureInfo.InvariantCulture), "--regid=" + providerGid.ToString(CultureInfo.InvariantCulture),
            "--clear-groups", "--", "tar", "--create", "--file=-", "--format=pax", "--numeric-owner", "--xattrs", "--xattrs-include=*",
            "--acls", "--sparse", "--one-file-system", "--directory=" + directory, "--", "."])
        {
            info.ArgumentList.Add(argument);
        }
        info.Environment["LC_ALL"] = "C";
        // EOF is only the end of the archive if tar succeeded; otherwise the tree was not read whole.
        return ProcessOutputStream.Start(info, "reading the provider's restore directory failed");
    }
}
