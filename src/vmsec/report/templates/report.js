(function(){
"use strict";
const D=JSON.parse(document.getElementById("vmsec-data").textContent);
const F=D.findings, C=D.checks, T=D.targets, SV=D.severities, ST=D.statuses, PAGE=100;
const byTarget=new Map();
F.forEach(function(f,i){let a=byTarget.get(f[3]);if(!a){a=[];byTarget.set(f[3],a);}a.push(i);});
let hay=null;
function el(tag,cls,text){const n=document.createElement(tag);if(cls)n.className=cls;
 if(text!==undefined&&text!==null)n.textContent=String(text);return n;}
function targetLabel(t){const x=T[t];return (D.kinds[x[0]]||x[0])+" "+x[1]+(x[2]?" @ "+x[2]:"");}
function card(i){
 const f=F[i],c=C[f[0]],st=ST[f[1]],sv=SV[f[2]];
 const d=el("div","finding");d.dataset.index=String(i);d.dataset.status=st;d.dataset.severity=sv;
 const h=el("div","head");h.append(el("span","badge "+st,st),el("span","badge sev-"+sv,sv),
  el("code",null,c[0]),el("span","title",c[1]));d.append(h);
 d.append(el("div","meta",targetLabel(f[3])+" · "+f[4]));
 d.append(el("div","msg",f[5]));
 const det=el("details");det.append(el("summary",null,"Evidence, remediation and why it matters"));
 const dl=el("dl");
 dl.append(el("dt",null,"Evidence"));
 if(f[6].length===0)dl.append(el("dd","muted","none recorded"));
 f[6].forEach(function(ev){
  dl.append(el("dd","ev",ev[0]+(ev[1]?" ["+ev[1]+"]":"")+(ev[2]!==null?" = "+ev[2]:"")));});
 dl.append(el("dt",null,"Remediation"),el("dd",null,f[7]!==null?f[7]:(c[3]||"none recorded")));
 if(c[2]){dl.append(el("dt",null,"Why this matters"),el("dd",null,c[2]));}
 if(c[4].length){dl.append(el("dt",null,"References"));c[4].forEach(function(r){const dd=el("dd");
  if(/^https:\/\//.test(r)){const a=el("a",null,r);a.href=r;a.rel="noopener noreferrer";dd.append(a);}
  else dd.textContent=r;dl.append(dd);});}
 det.append(dl);
 if(f[8]){det.append(el("pre",null,f[8]));}
 d.append(det);return d;}
function pager(container,indices){
 let shown=0;container.textContent="";
 const list=el("div","rows");container.append(list);
 const btn=el("button","more","Show more");btn.type="button";
 function more(){const end=Math.min(indices.length,shown+PAGE);const frag=document.createDocumentFragment();
  for(;shown<end;shown++)frag.append(card(indices[shown]));list.append(frag);
  btn.hidden=shown>=indices.length;btn.textContent="Show more ("+(indices.length-shown)+" left)";}
 btn.addEventListener("click",more);container.append(btn);
 if(indices.length===0)list.append(el("p","muted","No findings to show."));
 more();}
document.querySelectorAll(".drill").forEach(function(d){
 const det=d.closest("details");
 det.addEventListener("toggle",function(){if(!det.open||d.dataset.done)return;d.dataset.done="1";
  let idx=[];d.dataset.targets.split(",").filter(Boolean).forEach(function(t){
   (byTarget.get(Number(t))||[]).forEach(function(i){if(ST[F[i][1]]!=="PASS")idx.push(i);});});
  pager(d,idx);});});
const fs=document.getElementById("f-severity"),fst=document.getElementById("f-status"),
 ft=document.getElementById("f-target"),fx=document.getElementById("f-text"),
 list=document.getElementById("list"),moreBtn=document.getElementById("more"),
 count=document.getElementById("shown-count");
const opts=document.createDocumentFragment();
T.forEach(function(t,i){const o=el("option",null,targetLabel(i));o.value=String(i);opts.append(o);});
ft.append(opts);
let current=[],shown=0;
function apply(){
 const sv=fs.value?SV.indexOf(fs.value):-1,st=fst.value,stI=ST.indexOf(st),passI=ST.indexOf("PASS");
 const t=ft.value===""?-1:Number(ft.value),q=fx.value.trim().toLowerCase();
 if(q&&!hay){hay=F.map(function(f){const c=C[f[0]];
  return (c[0]+" "+c[1]+" "+T[f[3]][1]+" "+f[4]+" "+f[5]).toLowerCase();});}
 current=[];
 for(let i=0;i<F.length;i++){const f=F[i];
  if(sv>=0&&f[2]!==sv)continue;
  if(st==="open"){if(f[1]===passI)continue;}else if(st&&f[1]!==stI)continue;
  if(t>=0&&f[3]!==t)continue;
  if(q&&hay[i].indexOf(q)<0)continue;
  current.push(i);}
 count.textContent=String(current.length);list.textContent="";shown=0;more();}
function more(){const end=Math.min(current.length,shown+PAGE);const frag=document.createDocumentFragment();
 for(;shown<end;shown++)frag.append(card(current[shown]));list.append(frag);
 moreBtn.hidden=shown>=current.length;moreBtn.textContent="Show more ("+(current.length-shown)+" left)";}
moreBtn.addEventListener("click",more);
let timer=0;
[fs,fst,ft].forEach(function(s){s.addEventListener("change",apply);});
fx.addEventListener("input",function(){clearTimeout(timer);timer=setTimeout(apply,150);});
const vf=document.getElementById("vm-filter");
vf.addEventListener("input",function(){const q=vf.value.trim().toLowerCase();
 document.querySelectorAll("details.vm").forEach(function(d){
  d.hidden=q!==""&&d.querySelector(".name").textContent.toLowerCase().indexOf(q)<0;});});
document.querySelectorAll("#status-counts .stat").forEach(function(s){s.addEventListener("click",function(){
 fst.value=s.dataset.status;apply();document.getElementById("findings").scrollIntoView();});});
apply();
})();
