(function(){"use strict";
function key(row,i){var c=row.cells[i];if(!c){return "";}var v=c.getAttribute("data-sort");
return v===null?c.textContent.trim().toLowerCase():v;}
function sortBy(table,i,desc){var head=table.tHead.rows[0].cells;
var numeric=head[i].getAttribute("data-type")==="number";var body=table.tBodies[0];
var rows=Array.prototype.slice.call(body.rows);
rows.sort(function(a,b){var x=key(a,i),y=key(b,i);if(x===y){return 0;}
if(x===""){return 1;}if(y===""){return -1;}
var r=numeric?parseFloat(x)-parseFloat(y):x.localeCompare(y);return desc?-r:r;});
rows.forEach(function(r){body.appendChild(r);});
for(var j=0;j<head.length;j++){
if(j===i){head[j].setAttribute("aria-sort",desc?"descending":"ascending");}else{head[j].removeAttribute("aria-sort");}}
table.setAttribute("data-sorted",head[i].getAttribute("data-key")+"-"+(desc?"desc":"asc"));}
function setup(table){var head=table.tHead.rows[0].cells;
Array.prototype.forEach.call(head,function(th,i){var name=th.getAttribute("data-key");
if(!name){return;}
var b=document.createElement("button");b.type="button";b.className="sort";
while(th.firstChild){b.appendChild(th.firstChild);}th.appendChild(b);
b.addEventListener("click",function(){var now=th.getAttribute("aria-sort");
var desc=now?now==="ascending":th.getAttribute("data-type")==="number";sortBy(table,i,desc);
if(table.id==="contributors-table"&&window.history&&history.replaceState){
try{history.replaceState(null,"","#sort="+name+"-"+(desc?"desc":"asc"));}catch(e){}}});});
table.classList.add("js-sortable");}
Array.prototype.forEach.call(document.querySelectorAll("table.sortable"),setup);
var m=/^#sort=([a-z0-9-]+)-(asc|desc)$/.exec(window.location.hash);
var t=document.getElementById("contributors-table");
if(m&&t){Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th,i){
if(th.getAttribute("data-key")===m[1]){sortBy(t,i,m[2]==="desc");}});}
window.addEventListener("beforeprint",function(){
Array.prototype.forEach.call(document.querySelectorAll("details"),function(d){d.open=true;});});
})();
