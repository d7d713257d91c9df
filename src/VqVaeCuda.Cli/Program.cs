using System.CommandLine;
var root = new RootCommand("vqvae");
var opt = new Option<string>("--device") { Description = "device", DefaultValueFactory = _ => "auto" };
var info = new Command("info", "show");
info.Options.Add(opt);
info.SetAction(pr => { Console.WriteLine(pr.GetValue(opt)); return 0; });
root.Subcommands.Add(info);
return root.Parse(args).Invoke();
